"""Build dist/cronflow.pyz: cronflow and every dependency in one executable zipapp (shiv).

Usage: python tools/build_pyz.py DIST_DIR   (after `python -m build --outdir DIST_DIR`; `make dist`
does both). Needs pip, shiv and packaging, and PyPI.

Most dependencies are pure Python. A few ship compiled modules built for one CPython version
each (PyYAML and charset-normalizer, which apprise needs), so a zipapp built the plain way
would run only on the Python that built it. Compiled modules carry their ABI in their file
name (`_yaml.cpython-312-x86_64-linux-gnu.so`), so the modules of every supported
version can sit side by side: this script adds, for each such package, the wheels of the same
release for the other versions, and each interpreter loads its own. The result runs on
CPython 3.11 to 3.14 of this machine's operating system and CPU.

shiv unpacks the packages on the first run (into $SHIV_ROOT or ~/.shiv) and, on every later
run, reads the whole archive again before starting. The archive's __main__.py is replaced by a
short one that starts cronflow straight from the unpacked copy when it is there, and hands over
to shiv's bootstrap otherwise; later runs then cost about what the installed command costs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from packaging.tags import platform_tags

OTHER_PYTHONS = ("3.12", "3.13", "3.14")  # besides the one running this script (3.11)
ENTRY_POINT = "cronflow.__main__:main"
FAST_MAIN = '''"""cronflow.pyz: start cronflow from the packages shiv unpacked on the first run, or
let shiv's bootstrap unpack them (see tools/build_pyz.py in cronflow's source)."""
import os
import sys

BUILD_ID = "{build_id}"


def unpacked():
    """Where shiv's bootstrap puts this build's packages: $SHIV_ROOT or ~/.shiv."""
    root = os.environ.get("SHIV_ROOT") or os.path.expanduser("~/.shiv")
    name = os.path.basename(os.path.realpath(sys.argv[0]))
    return os.path.join(root, name + "_" + BUILD_ID, "site-packages")


site_packages = unpacked()
if os.path.isdir(site_packages) and not os.environ.get("SHIV_FORCE_EXTRACT"):
    import site

    before = list(sys.path)
    site.addsitedir(site_packages)  # as shiv does: .pth files too, and before other sites
    sys.path[:] = [before[0], *(p for p in sys.path if p not in before), *before[1:]]
    from cronflow.__main__ import main

    sys.exit(main())
else:
    import _bootstrap

    _bootstrap.bootstrap()
'''


def main(dist: Path) -> Path:
    [wheel] = sorted(dist.glob("cronflow-*.whl"))
    build = dist.parent / "build" / "pyz"
    shutil.rmtree(build, ignore_errors=True)
    site = build / "site-packages"
    pip("install", "--no-compile", "--target", str(site), str(wheel))  # shiv compiles at unpacking
    compiled = compiled_distributions(site)
    for version in OTHER_PYTHONS:
        add_compiled_modules(site, build / f"cp{version}", version, compiled)
    output = dist / "cronflow.pyz"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "shiv"),
            "--site-packages",
            str(site),
            "--entry-point",
            ENTRY_POINT,
            "--output-file",
            str(output),
            "--python",
            "/usr/bin/env python3",
            "--compressed",
            "--reproducible",
            "--compile-pyc",
        ],
        check=True,
    )
    with_fast_main(output)
    return output


def with_fast_main(pyz: Path) -> None:
    """Replace shiv's __main__.py by FAST_MAIN, keeping everything else byte for byte."""
    rebuilt = pyz.with_suffix(".tmp")
    with zipfile.ZipFile(pyz) as original, zipfile.ZipFile(rebuilt, "w") as copy:
        build_id = json.loads(original.read("environment.json"))["build_id"]
        for entry in original.infolist():
            data = original.read(entry)
            if entry.filename == "__main__.py":
                data = FAST_MAIN.format(build_id=build_id).encode()
            copy.writestr(entry, data)
    with open(pyz, "rb") as original:
        shebang = original.readline()
    pyz.write_bytes(shebang + rebuilt.read_bytes())
    rebuilt.unlink()


def pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args], check=True
    )


def compiled_distributions(site: Path) -> list[str]:
    """`name==version` of every installed distribution that holds a compiled module."""
    found = []
    for record in sorted(site.glob("*.dist-info/RECORD")):
        if any(line.split(",")[0].endswith(".so") for line in record.read_text().splitlines()):
            name, version = record.parent.name.removesuffix(".dist-info").rsplit("-", 1)
            found.append(f"{name}=={version}")
    return found


def add_compiled_modules(site: Path, scratch: Path, version: str, compiled: list[str]) -> None:
    """Install the `version` wheels of `compiled` into `scratch`; copy their modules to `site`."""
    platforms = [argument for tag in platform_tags() for argument in ("--platform", tag)]
    pip(
        "install",
        "--no-compile",
        "--target",
        str(scratch),
        "--no-deps",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        version,
        *platforms,
        *compiled,
    )
    for module in scratch.rglob("*.so"):
        destination = site / module.relative_to(scratch)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(module, destination)


if __name__ == "__main__":
    print(main(Path(sys.argv[1]).resolve()))
