"""What the pretend K3s releases say about themselves (lab/k3s/_releases.py)."""
from __future__ import annotations

import json
import re

import pytest

from lab.k3s import _releases


def test_version_text_is_what_k3s_prints():
    # observed on a v1.34.6+k3s1 host
    assert _releases.version_text("v1.34.6+k3s1") == "k3s version v1.34.6+k3s1 (234e6132)\ngo version go1.24.13\n"
    assert _releases.version_text("v1.34.9+k3s1") == "k3s version v1.34.9+k3s1 (5f72184f)\ngo version go1.25.11\n"


def test_version_info_is_the_apiserver_version_document():
    # /version of a real v1.34.6+k3s1 apiserver, same keys in the same order
    observed = """{
  "major": "1", "minor": "34", "emulationMajor": "1", "emulationMinor": "34",
  "minCompatibilityMajor": "1", "minCompatibilityMinor": "33", "gitVersion": "v1.34.6+k3s1",
  "gitCommit": "234e61326ca4e005522be1e69645c1ca5754121f", "gitTreeState": "clean",
  "buildDate": "2026-03-28T03:22:26Z", "goVersion": "go1.24.13", "compiler": "gc", "platform": "linux/amd64"}"""
    info = _releases.version_info("v1.34.6+k3s1")
    assert list(info.items()) == list(json.loads(observed).items())
    assert json.loads(_releases.version_json("v1.34.6+k3s1")) == info


def test_unknown_build_date_gets_the_stand_in_value():
    assert _releases.version_info("v1.34.9+k3s1")["buildDate"] == _releases.STAND_IN_BUILD_DATE
    assert "build_date" in _releases.RELEASES["v1.34.9+k3s1"]["unconfirmed"]


def test_embedded_etcd_version():
    assert _releases.etcd_version("v1.34.9+k3s1") == "3.6.12"
    assert re.fullmatch(r"3\.6\.\d+", _releases.etcd_version(_releases.PRODUCTION))


@pytest.mark.parametrize("name", sorted(_releases.RELEASES))
def test_every_release_has_the_fields_the_stand_in_uses(name):
    rel = _releases.RELEASES[name]
    assert re.fullmatch(r"[0-9a-f]{40}", rel["git_commit"])
    assert rel["kubernetes"] == name.split("+")[0]
    assert re.fullmatch(r"go1\.\d+\.\d+", rel["go"])
    for field in ("etcd", "containerd", "traefik", "coredns", "helm_controller", "flannel"):
        assert field in rel and (rel[field] is not None or field in rel["unconfirmed"])


def test_production_and_newest_are_known_and_unknown_ones_are_refused():
    assert {_releases.PRODUCTION, _releases.NEWEST} <= set(_releases.RELEASES)
    with pytest.raises(KeyError, match="unknown K3s release"):
        _releases.version_text("v1.33.0+k3s1")


def test_each_built_release_answers_as_that_release(tmp_path):
    """The zipapp reads its baked-in RELEASE through the package loader (os.path cannot see inside a zip)."""
    import subprocess
    import sys

    from lab.k3s import build
    for exe in build.build(tmp_path, ["v1.34.6+k3s1", "v1.34.9+k3s1"]):
        out = subprocess.run([sys.executable, str(exe), "--version"], capture_output=True, text=True, check=True,
                             env={"PATH": "/usr/bin:/bin"}).stdout
        assert out.startswith(f"k3s version {exe.parent.name} ("), out
