"""Fixtures shared by unit and integration tests: the stand-ins, each on a free loopback port."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The repo itself (for lab.*) and the committed collections/ link (for ansible_collections.honeydue.infra,
# merged with the bundled collections: ansible_collections is a namespace package).
for _path in (REPO, REPO / "collections"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

TOKEN = "standin-test-token-0123456789abcdef"


def _serve(cls):
    standin = cls(token=TOKEN).start()
    try:
        yield standin
    finally:
        standin.stop()
        assert not standin.contract_violations, (
            f"{standin.name} stand-in answered outside its vendor contract: {standin.contract_violations}")


@pytest.fixture
def hcloud_api():
    """The Hetzner Cloud stand-in (``hcloud_api.url + '/v1'`` is the endpoint)."""
    from lab.standins.hcloud import HcloudStandIn
    yield from _serve(HcloudStandIn)


@pytest.fixture
def cloudflare_api():
    """The Cloudflare stand-in (``cloudflare_api.url + '/client/v4'`` is the base URL)."""
    from lab.standins.cloudflare import CloudflareStandIn
    yield from _serve(CloudflareStandIn)


@pytest.fixture
def kube_api():
    """The Kubernetes API stand-in (``kube_api.kubeconfig(path)`` writes a kubeconfig for it)."""
    from lab.standins.kube import KubeStandIn
    yield from _serve(KubeStandIn)
