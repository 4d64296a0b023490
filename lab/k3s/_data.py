"""The data the K3s stand-in carries in its executable, extracted where K3s puts its own.

Real K3s unpacks the binaries and manifests bundled in its executable once into
``/var/lib/rancher/k3s/data/<hash>/``. The stand-in's zipapp (lab/k3s/build.py) carries what the
Kubernetes API logic of lab/standins reads from disk under ``data/`` in the zip:

* ``data/specs/``: ``k3s/<CRD>.yaml`` of the release's helm-controller and ``traefik/values.schema.*.json``
  (the layout of ``shared/specs``, read through ``$HONEYDUE_SPECS``);
* ``data/kube-schemas/``: the Kubernetes strict JSON schemas (``_definitions.json`` + one file per kind,
  kubernetes-validate's ``v1.34.0-local-strict``, read through ``$HONEYDUE_KUBE_SCHEMAS``).

:func:`ensure_data` extracts them (once per executable: the directory is named by the executable's
sha256) and answers the environment that points the stand-in at them. Run from the repository (not
from a zip) it answers ``{}``: the repository's own lookups apply.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
import zipimport
from pathlib import Path

PREFIX = "data/"  # the zip entries extracted
SPECS = "specs"  # data/specs/        -> HONEYDUE_SPECS
KUBE_SCHEMAS = "kube-schemas"  # data/kube-schemas/ -> HONEYDUE_KUBE_SCHEMAS
ENV = {"HONEYDUE_SPECS": SPECS, "HONEYDUE_KUBE_SCHEMAS": KUBE_SCHEMAS}


def running_archive() -> Path | None:
    """The zipapp this module was imported from, or None (imported from a directory)."""
    loader = globals().get("__loader__")
    if isinstance(loader, zipimport.zipimporter):
        return Path(loader.archive)
    return None


def archive_hash(archive: Path) -> str:
    """The first 16 hex digits of the executable's sha256 (the data directory's name)."""
    digest = hashlib.sha256()
    with archive.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _extract(archive: Path, into: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if not info.filename.startswith(PREFIX) or info.is_dir():
                continue
            relative = info.filename[len(PREFIX):]
            parts = relative.split("/")
            if not relative or any(p in ("", ".", "..") for p in parts):
                raise ValueError(f"{archive}: refusing zip entry {info.filename!r}")
            target = into.joinpath(*parts)
            for parent in reversed(target.relative_to(into).parents[:-1]):
                d = into / parent
                if not d.is_dir():
                    d.mkdir()
                    d.chmod(0o755)
            with zf.open(info) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            target.chmod(0o644)


def ensure_data(data_dir: Path, *, set_environ: bool = False, archive: Path | None = None) -> dict[str, str]:
    """Extract the executable's ``data/`` into ``<data_dir>/data/<hash>/`` unless it is there already,
    and return ``HONEYDUE_SPECS``/``HONEYDUE_KUBE_SCHEMAS`` pointing into it (``{}`` outside a zipapp).

    ``set_environ``: also put them in ``os.environ`` (for the stand-in imported in this process).
    ``archive``: the executable (default: the zipapp this module runs from). The extraction goes to a
    temporary sibling directory renamed into place, so a crash or a concurrent start never leaves a
    half-written directory under the final name; files are 0644, directories 0755.
    """
    archive = archive or running_archive()
    if archive is None:
        return {}
    parent = Path(data_dir) / "data"
    parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    final = parent / archive_hash(archive)
    if not final.is_dir():
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=parent))
        try:
            _extract(archive, tmp)
            tmp.chmod(0o755)
            try:
                tmp.rename(final)
            except OSError:
                if not final.is_dir():  # not another process's identical copy: a real failure
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    env = {name: str(final / sub) for name, sub in ENV.items()}
    if set_environ:
        os.environ.update(env)
    return env
