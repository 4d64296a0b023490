"""Build the K3s stand-in as a release: one executable ``k3s`` plus ``sha256sum-amd64.txt``, laid out
as GitHub serves K3s releases (``<out>/<version>/k3s``), so the role's download-and-verify path runs.

    python -m lab.k3s.build --out .cache/k3s-releases [--release v1.34.6+k3s1 ...]

The executable is a Python zip application (``#!/usr/bin/python3``) for the lab nodes (Debian 13:
python3, python3-yaml, python3-cryptography, etcd-server, kubectl). Each release's build answers
as that release (``k3s --version``, ``/version``).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import stat
import zipfile
from pathlib import Path

from . import _releases

HERE = Path(__file__).resolve().parent
ENTRY = "import sys\nfrom lab.k3s.__main__ import main\nsys.exit(main())\n"
FIXED_TIME = (2026, 1, 1, 0, 0, 0)  # reproducible archives: the same sources give the same sha256


def _add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def build_executable(release: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        _add(zf, "__main__.py", ENTRY.encode())
        _add(zf, "lab/__init__.py", b"")
        for src in sorted(HERE.glob("*.py")):
            if src.name != "build.py":
                _add(zf, f"lab/k3s/{src.name}", src.read_bytes())
        _add(zf, "lab/k3s/RELEASE", (release + "\n").encode())
    return b"#!/usr/bin/python3\n" + buf.getvalue()


def build(out: Path, releases: list[str]) -> list[Path]:
    written = []
    for release in releases:
        d = out / release
        d.mkdir(parents=True, exist_ok=True)
        exe = build_executable(release)
        target = d / "k3s"
        tmp = d / ".k3s.tmp"
        tmp.write_bytes(exe)
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        os.replace(tmp, target)
        digest = hashlib.sha256(exe).hexdigest()
        (d / "sha256sum-amd64.txt").write_text(f"{digest}  k3s\n")
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--release", action="append", help="a release from lab/k3s/_releases.py (default: all)")
    parser.add_argument("--clean", action="store_true")
    args = parser.parse_args()
    if args.clean and args.out.exists():
        shutil.rmtree(args.out)
    for path in build(args.out, args.release or list(_releases.RELEASES)):
        print(path)


if __name__ == "__main__":
    main()
