"""Build the K3s stand-in as a release: one executable ``k3s`` plus ``sha256sum-amd64.txt``, laid out
as GitHub serves K3s releases (``<out>/<version>/k3s``), so the role's download-and-verify path runs.

    python -m lab.k3s.build --out .cache/k3s-releases [--release v1.34.6+k3s1 ...]

The executable is a Python zip application (``#!/usr/bin/python3``) for the lab nodes (Debian 13:
python3, python3-yaml, python3-cryptography, python3-jsonschema, etcd-server, kubectl). Each
release's build answers as that release (``k3s --version``, ``/version``).

It carries ``lab/k3s`` and the modules those and the Kubernetes stand-in (``lab/standins/kube.py``)
import, found by following their imports of ``lab.*`` (so nothing that needs a package the node lacks,
such as the Hetzner/Cloudflare stand-ins' openapi_schema_validator, comes along), with the collection's
``plugins/module_utils/_oci_registry.py`` as ``ansible_collections/honeydue/infra/...`` for the
kubelet's pull. Under ``data/`` it carries what the Kubernetes stand-in reads from disk, for the
release built (lab/k3s/_data.py extracts it on the node): the strict Kubernetes JSON schemas, the
release's helm-controller CRD and the Traefik chart values schemas.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import io
import os
import shutil
import stat
import zipfile
from pathlib import Path

from . import _data, _releases

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
COLLECTION = "ansible_collections.honeydue.infra"  # the repository root, as ansible imports it
ROOTS = ("lab/standins/kube.py",)  # besides lab/k3s/*.py: what the K3s server runs
ENTRY = "import sys\nfrom lab.k3s.__main__ import main\nsys.exit(main())\n"
FIXED_TIME = (2026, 1, 1, 0, 0, 0)  # reproducible archives: the same sources give the same sha256


def _add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def _module_file(name: str) -> tuple[str, Path | None] | None:
    """(name in the zip, source) of module ``name`` when it is the repository's (``lab.*``, or the
    collection's ``ansible_collections.honeydue.infra.*``); the source of a package without an
    ``__init__.py`` in the repository (the collection's namespace packages) is None: an empty one."""
    parts = name.split(".")
    if parts[0] == "lab":
        relative = parts
    elif name == COLLECTION or name.startswith(COLLECTION + "."):
        relative = parts[3:]
    elif COLLECTION.startswith(name + "."):  # ansible_collections, ansible_collections.honeydue
        return "/".join(parts) + "/__init__.py", None
    else:
        return None
    base = REPO.joinpath(*relative)
    if base.with_name(base.name + ".py").is_file() and relative:
        return "/".join(parts) + ".py", base.with_name(base.name + ".py")
    if base.is_dir():
        init = base / "__init__.py"
        return "/".join(parts) + "/__init__.py", init if init.is_file() else None
    return None


def _imports(zip_name: str, src: Path) -> set[str]:
    """The modules ``src`` may import, at module level or inside functions (``from X import Y``: X and X.Y)."""
    package = zip_name.removesuffix(".py").split("/")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(src.read_bytes(), str(src))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def python_modules() -> dict[str, bytes]:
    """Zip name -> source: ``lab/k3s/*.py`` (but this file) and ``ROOTS``, what of the repository they
    import (transitively: ``lab.*`` and the collection's module_utils), and their packages' ``__init__.py``."""
    todo: list[tuple[str, Path | None]] = [(f"lab/k3s/{p.name}", p) for p in HERE.glob("*.py") if p.name != "build.py"]
    todo += [(root, REPO / root) for root in ROOTS]
    files: dict[str, Path | None] = {}
    while todo:
        zip_name, src = todo.pop()
        if zip_name in files or zip_name == "lab/k3s/build.py":
            continue
        files[zip_name] = src
        names = _imports(zip_name, src) if src else set()
        parts = zip_name.removesuffix(".py").split("/")
        names.update(".".join(parts[:i]) for i in range(1, len(parts)))  # the packages it lives in
        todo += [found for name in sorted(names) if (found := _module_file(name))]
    return {name: src.read_bytes() if src else b"" for name, src in sorted(files.items())}


def data_files(release: str) -> dict[str, Path]:
    """Zip name -> source of what the Kubernetes stand-in of ``release`` reads from disk (``data/``)."""
    from lab.standins import _kube_validate, _specs  # jsonschema & co.: only at build time here

    specs = _specs.specs_dir()
    schemas = _kube_validate._schema_dir()
    files: dict[str, Path] = {}
    for src in sorted(schemas.glob("*.json")):
        files[f"{_data.PREFIX}{_data.KUBE_SCHEMAS}/{src.name}"] = src
    wanted = [f"k3s/{name}" for name in sorted(set(_kube_validate.crd_files(release).values()))]
    wanted += [f"traefik/{p.name}" for p in sorted((specs / "traefik").glob("values.schema.*.json"))]
    wanted += [f"{d}/LICENSE" for d in ("k3s", "traefik") if (specs / d / "LICENSE").is_file()]
    for relative in wanted:
        src = specs / relative
        if not src.is_file():
            raise FileNotFoundError(f"{src}: the K3s stand-in of {release} needs it")
        files[f"{_data.PREFIX}{_data.SPECS}/{relative}"] = src
    if f"{_data.PREFIX}{_data.KUBE_SCHEMAS}/_definitions.json" not in files:
        raise FileNotFoundError(f"{schemas}: no _definitions.json (set HONEYDUE_KUBE_SCHEMAS or install kubernetes-validate)")
    return files


def build_executable(release: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        _add(zf, "__main__.py", ENTRY.encode())
        for name, source in python_modules().items():
            _add(zf, name, source)
        _add(zf, "lab/k3s/RELEASE", (release + "\n").encode())
        for name, src in data_files(release).items():
            _add(zf, name, src.read_bytes())
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
