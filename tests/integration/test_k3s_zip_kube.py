"""The K3s stand-in's executable on a real lab node image: Debian 13's python3 and python3-jsonschema run
the Kubernetes API logic it carries, with the data it extracts (lab/k3s/_data.py).

The image is lab/image/build.sh's (the tag is its recipe's hash; an unchanged recipe reuses the image).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest

from lab.k3s import _releases, build
from tests.conftest import REPO
from tests.unit.k3s.test_build_kube import CHECK, assert_answers


@pytest.fixture(scope="module")
def node_image() -> str:
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode:
        pytest.fail("no Docker engine: `make integration` starts one (scripts/ensure-docker.sh)")
    proc = subprocess.run([str(REPO / "lab" / "image" / "build.sh")], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("release", [_releases.PRODUCTION, _releases.NEWEST])
def test_the_executable_runs_the_kube_standin_on_a_lab_node(node_image, release, tmp_path) -> None:
    exe = build.build(tmp_path, [release])[0]
    data_dir = "/var/lib/rancher/k3s"
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", f"{exe}:/k3s:ro", node_image,
                           "python3", "-c", CHECK, "/k3s", data_dir], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert_answers(json.loads(proc.stdout), "/k3s", data_dir, hashlib.sha256(exe.read_bytes()).hexdigest(), release)
