"""Secrets kept out of captured output: which values are secret, and masking them as ***."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

MASK = "***"
MIN_SECRET_LENGTH = 5  # shorter values are not masked (Airflow's rule): "1" or "yes" would be
# Parts of a variable name that mark its value as a secret (Airflow masks the same kinds).
_SECRET_WORDS = re.compile(r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|PRIVATE")
_SECRET_PARTS = {"KEY", "APIKEY", "AUTH", "AUTHORIZATION", "DSN", "PASS", "PAT"}


def looks_secret(name: str) -> bool:
    """True for variable names such as API_TOKEN, DB_PASSWORD or AWS_SECRET_ACCESS_KEY."""
    upper = name.upper()
    return bool(_SECRET_WORDS.search(upper)) or bool(_SECRET_PARTS & set(upper.split("_")))


def secrets_of(env: Mapping[str, str], env_file_values: Iterable[str] = ()) -> tuple[str, ...]:
    """The values to mask in captured output: every value read from an env_file, and the
    `env` values whose names look secret; longest first, so no part of one is left over."""
    values = {*env_file_values, *(value for name, value in env.items() if looks_secret(name))}
    return tuple(sorted((v for v in values if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True))


def mask_bytes(data: bytes, secrets: Iterable[str]) -> bytes:
    for secret in secrets:
        data = data.replace(secret.encode(), MASK.encode())
    return data


def mask_text(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def shown_while_written(data: bytes, secrets: Sequence[str]) -> int:
    """How much of `data`, the unshown part of a file still being written, may be shown now:
    whole lines only, and never a cut through a secret, even one spanning lines. Whatever
    the reads, showing each part masked then gives what masking the whole file would."""
    cut = data.rfind(b"\n") + 1
    longest = max((len(secret.encode()) for secret in secrets), default=0)
    if longest > 1:
        cut = min(cut, data.rfind(b"\n", 0, max(0, len(data) - longest + 1)) + 1)
    moved = True
    while moved and cut:  # a secret found through the cut: cut before it
        moved = False
        for secret in secrets:
            raw = secret.encode()
            start = data.find(raw, max(0, cut - len(raw) + 1))
            if 0 <= start < cut < start + len(raw):
                cut, moved = data.rfind(b"\n", 0, start) + 1, True
    return cut


def redact(url: str) -> str:
    """`scheme://host[:port]` of a URL; everything that may be secret is dropped.

    Many apprise services put a token where a host would be (`slack://TokenA/...`,
    `tgram://bot-id:token/...`), so the host is shown only when it looks like a real host
    name or address; otherwise `***` stands for it. Ping URLs keep their secret (a check's
    UUID, a ping or API key) in the path, which is never shown.
    """
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]  # never the user:password part
    name, colon, port = netloc.rpartition(":")
    if not (colon and port.isdigit()):
        name, port = netloc, ""
    looks_like_host = name == "localhost" or "." in name or name.startswith("[")
    if not (looks_like_host and _HOST.fullmatch(name)):
        name = "***"
    return f"{parts.scheme}://{name}" + (f":{port}" if port else "")


_HOST = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")  # a name, IPv4 or [IPv6]
