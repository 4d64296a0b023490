"""The lab's container images: minimal single-layer OCI images whose config labels say how the
K3s stand-in's kubelet should make the "container" behave, pushed into a lab registry with skopeo.

``build_image(oci_dir, tag, labels)`` writes an OCI image layout
(https://github.com/opencontainers/image-spec/blob/main/image-layout.md): one gzip tar layer holding
``/lab/image.json`` (the labels again, for a reader of the filesystem), an image config carrying
``config.Labels`` and ``rootfs.diff_ids``, and the manifest, tagged ``tag`` in ``index.json``.
Everything is deterministic (mtime 0), so the same labels give the same digests.

The labels the lab kubelet reads are defined by ``lab/k3s/_podserver.py`` (the container's process):
``lab.honeydue/ready-after`` (seconds before any path answers 2xx), ``lab.honeydue/fail-paths``
(paths that always answer 500: a broken health check), ``lab.honeydue/crash`` (exit code at start:
CrashLoopBackOff), ``lab.honeydue/exit-after``, ``lab.honeydue/status``, ``lab.honeydue/term-delay``.

``push(oci_dir, tag, registry_host, repository, username, password)`` runs
``skopeo copy oci:<dir>:<tag> docker://<host>/<repository>:<tag>`` with its own 0600 auth file
(``--dest-authfile``; the credentials never appear on a command line), its own trust policy
(``--policy``), plain HTTP (``--dest-tls-verify=false``) and a private HOME/XDG_RUNTIME_DIR, so the
host's ``~/.docker``, ``/run/containers`` auth files and ``/etc/containers/policy.json`` are never
read or written.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

LABEL_READY_AFTER = "lab.honeydue/ready-after"
LABEL_FAIL_PATHS = "lab.honeydue/fail-paths"
LABEL_CRASH = "lab.honeydue/crash"

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class Image:
    oci_dir: Path
    tag: str
    manifest_digest: str
    config_digest: str
    layer_digest: str
    labels: dict


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    """(uncompressed tar, gzip of it), both reproducible."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(p).parent) for p in files if str(Path(p).parent) != "."})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for path in sorted(files):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(files[path]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[path]))
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, filename="") as f:
        f.write(tar_bytes)
    return tar_bytes, gz.getvalue()


def build_image(oci_dir: str | Path, tag: str, labels: dict[str, str] | None = None,
                files: dict[str, bytes] | None = None, architecture: str = "amd64") -> Image:
    """Write (or add ``tag`` to) the OCI layout at ``oci_dir``; label values are strings."""
    labels = {str(k): str(v) for k, v in (labels or {}).items()}
    oci_dir = Path(oci_dir)
    blobs = oci_dir / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    content = dict(files or {})
    content.setdefault("lab/image.json", json.dumps({"tag": tag, "labels": labels}, sort_keys=True).encode() + b"\n")
    tar_bytes, layer = _layer(content)
    config = json.dumps({
        "architecture": architecture, "os": "linux",
        "config": {"Labels": labels, "Cmd": ["/lab/run"], "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [_digest(tar_bytes)]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "lab/registry/images.py"}],
    }, sort_keys=True, separators=(",", ":")).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": _digest(config), "size": len(config)},
        "layers": [{"mediaType": MEDIA_LAYER, "digest": _digest(layer), "size": len(layer)}],
    }, sort_keys=True, separators=(",", ":")).encode()
    for blob in (layer, config, manifest):
        (blobs / _digest(blob).split(":", 1)[1]).write_bytes(blob)
    (oci_dir / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index_path = oci_dir / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"schemaVersion": 2, "manifests": []}
    index["manifests"] = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) != tag]
    index["manifests"].append({"mediaType": MEDIA_MANIFEST, "digest": _digest(manifest), "size": len(manifest),
                               "annotations": {REF_NAME: tag}})
    index_path.write_text(json.dumps(index, sort_keys=True))
    return Image(oci_dir, tag, _digest(manifest), _digest(config), _digest(layer), labels)


def skopeo_available() -> str | None:
    """None when skopeo is installed, else why not."""
    if shutil.which("skopeo") is None:
        return "skopeo is not installed (scripts/ensure-registry-tools.sh installs it)"
    return None


def push(image: Image, registry_host: str, repository: str, username: str | None = None, password: str | None = None,
         *, tag: str | None = None, tls_verify: bool = False, timeout: int = 120) -> str:
    """Copy ``image`` to ``docker://<registry_host>/<repository>:<tag>``; the destination reference."""
    dest = f"{registry_host}/{repository}:{tag or image.tag}"
    with tempfile.TemporaryDirectory(prefix="lab-skopeo-") as tmp:
        tmpdir = Path(tmp)
        authfile = tmpdir / "auth.json"
        auths = {}
        if username is not None:
            auths[registry_host] = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
        fd = os.open(authfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"auths": auths}, f)
        policy = tmpdir / "policy.json"
        policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        registries_conf = tmpdir / "registries.conf"
        registries_conf.write_text("")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmpdir), "XDG_RUNTIME_DIR": str(tmpdir),
               "XDG_CONFIG_HOME": str(tmpdir / "config"), "REGISTRY_AUTH_FILE": str(authfile),
               "CONTAINERS_REGISTRIES_CONF": str(registries_conf)}
        cmd = ["skopeo", "--policy", str(policy), "copy", "--quiet",
               "--authfile", str(authfile), "--dest-authfile", str(authfile),
               f"--dest-tls-verify={'true' if tls_verify else 'false'}", f"oci:{image.oci_dir}:{image.tag}", f"docker://{dest}"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"skopeo copy to {dest} failed ({proc.returncode}): {proc.stderr.strip()}")
    return dest
