"""Benchmark: what each piece of a run costs on this machine, against one bare spawn.

A run of `true` is at least: the job's two processes (the wrapper that holds the command at
its gate and writes its exit status, act/runner.py, and the command's own `sh -c`), two
fsynced log lines, and three files (stdout, stderr, exit status). Also measured: the
alternative to the wrapper's second process that was not taken (the command in a subshell
of the wrapper: `$$` would then be the wrapper's). Files are created in a folder just made
in the temporary directory (`TMPDIR`), as the other benchmarks make their state directories.

    make bench        # or: .venv/bin/python bench/bench_pieces.py [--repeat 300]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cronflow.act.runner import _WRAPPER


def per_call(action: Callable[[], object], repeat: int) -> float:
    for _ in range(20):
        action()
    started = time.perf_counter()
    for _ in range(repeat):
        action()
    return (time.perf_counter() - started) / repeat


def spawn(script: str) -> Callable[[], object]:
    return lambda: subprocess.run(
        ["/bin/sh", "-c", script, "/bin/sh", "true"],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )


def wrapper(folder: Path) -> Callable[[], object]:
    def run() -> None:
        gate_out, gate_in = os.pipe2(os.O_CLOEXEC)
        status = os.open(folder / "exit", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        process = subprocess.Popen(
            ["/bin/sh", "-c", _WRAPPER, "cronflow", "true", str(gate_out), str(status), "/bin/sh"],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=(gate_out, status),
        )
        os.close(gate_out)
        os.write(gate_in, b"go\n")
        os.close(gate_in)
        os.close(status)
        process.wait()

    return run


def creates(folder: Path) -> Callable[[], object]:
    count = iter(range(10**9))

    def create() -> None:
        number = next(count)
        for name in ("stdout", "stderr", "exit"):
            os.close(os.open(folder / f"{number}.{name}", os.O_WRONLY | os.O_CREAT, 0o600))

    return create


def appends(folder: Path) -> Callable[[], object]:
    log = os.open(folder / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    line = b"x" * 400 + b"\n"
    return lambda: (os.write(log, line), os.fsync(log))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory() as temporary:
        here = Path(temporary)
        bare = per_call(spawn("true"), repeat)
        figures = [
            ("bare sh -c true (the baseline)", bare),
            (
                "the wrapper and the command's sh, at the gate",
                per_call(wrapper(here), repeat),
            ),
            (
                "  the same without the gate: sh, then sh -c",
                per_call(spawn('"$0" -c "$1"; s=$?'), repeat),
            ),
            (
                "  not taken: the command in a subshell",
                per_call(spawn('(eval "$1"); s=$?'), repeat),
            ),
            ("an fsynced line appended to a log", per_call(appends(here), repeat)),
            ("3 files created (stdout, stderr, exit status)", per_call(creates(here), repeat)),
        ]
    print(f"the pieces of a run, mean of {repeat}")
    for name, seconds in figures:
        print(f"  {name:50} {seconds * 1000:7.3f} ms  x{seconds / bare:5.2f}")


if __name__ == "__main__":
    main()
