"""The lab registry for real: Debian's distribution/registry 2.8 (htpasswd and Gitea-style token auth),
a lab image pushed with skopeo, and the collection's registry client (module_utils/_oci_registry)
asking for tags the way the deploy and the kubelet stand-in do."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ansible_collections.honeydue.infra.plugins.module_utils import _oci_registry as oci
from lab.registry import _pull
from lab.registry._token_server import signing_identity
from lab.registry.images import LABEL_CRASH, LABEL_FAIL_PATHS, LABEL_READY_AFTER, build_image, push, skopeo_available
from lab.registry.server import LabRegistry, registry_available

REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "deploy", "lab-registry-password"
SHA = "3f2c1d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"
LABELS = {LABEL_READY_AFTER: "5", LABEL_FAIL_PATHS: "/api/health/"}


def _tools_missing():
    reason = registry_available() or skopeo_available()
    if reason is None:
        return None
    # `make integration` installs them first; a bare pytest run tries the same script once.
    script = REPO / "scripts" / "ensure-registry-tools.sh"
    proc = subprocess.run([str(script)], capture_output=True, text=True, timeout=600)
    if proc.returncode == 0:
        return registry_available() or skopeo_available()
    return f"{reason}; scripts/ensure-registry-tools.sh could not install it: {proc.stderr.strip()[-300:]}"


_MISSING = _tools_missing()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return build_image(tmp_path_factory.mktemp("oci") / "layout", SHA, LABELS)


@pytest.fixture(params=["htpasswd", "token-x5c", "token-kid"])
def registry(request, image):
    auth, _, key_reference = request.param.partition("-")
    reg = LabRegistry(auth, {USER: PASSWORD, "reader": "reader-password"}, readonly=("reader",),
                      key_reference=key_reference or "x5c").start()
    try:
        push(image, reg.host, "honeydue/api", USER, PASSWORD)
        yield reg
    finally:
        reg.stop()


def head(reg, tag, user=USER, password=PASSWORD, repository="honeydue/api"):
    return oci.manifest_exists(oci.open_url_transport(), reg.url, repository, tag, user, password)


def test_existing_tag_exists(registry, image):
    r = head(registry, SHA)
    assert r["state"] == "exists", r
    assert r["digest"] == image.manifest_digest and r["media_type"] == oci.MEDIA_OCI_MANIFEST
    if registry.auth == "token":
        assert r["auth"] == "bearer" and r["token_requests"] == 1
        # the token came from the token server: Basic credentials, the repository's pull scope
        assert registry.token_server.requests[-1] == {"scopes": ["repository:honeydue/api:pull"],
                                                      "service": "container_registry", "user": USER, "status": 200}
    else:
        assert r["auth"] == "basic" and r["token_requests"] == 0


def test_missing_tag_is_missing_with_manifest_unknown(registry):
    r = head(registry, "0" * 40)
    assert (r["state"], r["status"], r["code"]) == ("missing", 404, "MANIFEST_UNKNOWN"), r


def test_wrong_password_is_denied(registry):
    before = len(registry.token_server.requests) if registry.token_server else 0
    r = head(registry, SHA, password="wrong")
    assert (r["state"], r["status"], r["code"]) == ("denied", 401, "UNAUTHORIZED"), r
    if registry.token_server:
        assert [q["status"] for q in registry.token_server.requests[before:]] == [401]


def test_anonymous_is_denied(registry):
    r = head(registry, SHA, user=None, password=None)
    assert (r["state"], r["status"]) == ("denied", 401), r
    if registry.token_server:
        # like Gitea's ghost user: a token is issued, with no access, and the registry refuses it
        assert registry.token_server.requests[-1]["user"] is None and r["token_requests"] == 1


def test_labels_read_back_through_the_kubelet_pull(registry, image):
    pulled = _pull.pull_config(f"{registry.host}/honeydue/api:{SHA}", (USER, PASSWORD))
    assert pulled["labels"] == LABELS
    assert pulled["digest"] == image.manifest_digest
    assert pulled["manifest"]["config"]["digest"] == image.config_digest
    assert pulled["config"]["rootfs"]["type"] == "layers"
    with pytest.raises(oci.RegistryError, match="missing"):
        _pull.pull_config(f"{registry.host}/honeydue/api:{'0' * 40}", (USER, PASSWORD))
    with pytest.raises(oci.RegistryError, match="denied"):
        _pull.pull_config(f"{registry.host}/honeydue/api:{SHA}", (USER, "wrong"))


def test_pull_credentials_from_an_image_pull_secret_and_registries_yaml(registry):
    secret = {"auths": {registry.host: {"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}}
    creds = _pull.credentials_from_dockerconfig(secret, registry.host)
    assert creds == (USER, PASSWORD)
    k3s = {"configs": {registry.host: {"auth": {"username": USER, "password": PASSWORD}}}}
    assert _pull.credentials_from_registries_yaml(k3s, registry.host) == (USER, PASSWORD)
    assert _pull.pull_config(f"{registry.host}/honeydue/api:{SHA}", creds)["labels"][LABEL_READY_AFTER] == "5"


def test_token_mode_read_only_user_can_pull_but_not_push(tmp_path):
    other = build_image(tmp_path / "layout", "0123abc", {LABEL_CRASH: "1"})
    with LabRegistry("token", {USER: PASSWORD, "reader": "reader-password"}, readonly=("reader",)) as reg:
        push(other, reg.host, "honeydue/worker", USER, PASSWORD)
        assert head(reg, "0123abc", "reader", "reader-password", "honeydue/worker")["state"] == "exists"
        with pytest.raises(RuntimeError, match="skopeo copy"):
            push(other, reg.host, "honeydue/worker", "reader", "reader-password", tag="fffffff")
        assert head(reg, "fffffff", repository="honeydue/worker")["state"] == "missing"
        assert _pull.pull_config(f"{reg.host}/honeydue/worker:0123abc", ("reader", "reader-password"))["labels"] == {
            LABEL_CRASH: "1"}


def test_token_signed_by_an_untrusted_key_is_refused(image):
    """The registry really verifies the token: re-key the token server after the registry trusted
    its first certificate, and the same credentials are refused."""
    refusals = {"x5c": "unable to verify certificate chain", "kid": "token signed by untrusted key with ID"}
    for key_reference, refusal in refusals.items():
        with LabRegistry("token", {USER: PASSWORD}, key_reference=key_reference) as reg:
            push(image, reg.host, "honeydue/api", USER, PASSWORD)
            assert head(reg, SHA)["state"] == "exists"
            reg.token_server.key, reg.token_server.cert = signing_identity()
            r = head(reg, SHA)
            assert (r["state"], r["status"], r["token_requests"]) == ("denied", 401, 1), r
            assert refusal in reg.log() and "invalid token" in reg.log()


def test_registry_challenge_is_the_distribution_bearer_form():
    with LabRegistry("token", {USER: PASSWORD}) as reg:
        req = urllib.request.Request(f"{reg.url}/v2/honeydue/api/manifests/{SHA}", method="HEAD")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        (challenge,) = oci.parse_www_authenticate(e.value.headers.get_all("WWW-Authenticate"))
        assert challenge == oci.Challenge("bearer", {"realm": reg.token_server.realm, "service": "container_registry",
                                                     "scope": "repository:honeydue/api:pull"})


def test_push_never_touches_the_hosts_auth_files(tmp_path, image, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    with LabRegistry("htpasswd", {USER: PASSWORD}) as reg:
        push(image, reg.host, "honeydue/api", USER, PASSWORD)
    assert list(home.iterdir()) == []
    auth = Path(f"/run/containers/{os.getuid()}/auth.json")
    assert not auth.exists() or reg.host not in json.loads(auth.read_text()).get("auths", {})


# --- the module oci_image_exists, through ansible-playbook (token mode, like Gitea) -----------------

WRONG_PASSWORD = "not-the-pull-password-9d2c41e7"
# The passwords reach the playbook as a vault secret would: by name, never in the playbook's text
# (ansible shows a failed task's source lines, so a literal password there would be shown).
SECRETS = {"LAB_PULL_PASSWORD": PASSWORD, "LAB_WRONG_PASSWORD": WRONG_PASSWORD}


@pytest.fixture(scope="module")
def token_registry(image):
    with LabRegistry("token", {USER: PASSWORD}) as reg:
        push(image, reg.host, "honeydue/api", USER, PASSWORD)
        yield reg


def image_check(reg, tags, name="check", password="LAB_PULL_PASSWORD", **extra):
    """A task of honeydue.infra.oci_image_exists for ``honeydue/api:<tag>`` on ``reg``, over plain HTTP,
    with the password of the environment variable ``password``."""
    return {"name": name, "honeydue.infra.oci_image_exists": {
        "images": [f"{reg.host}/honeydue/api:{tag}" for tag in tags], "username": USER,
        "password": "{{ lookup('ansible.builtin.env', '%s') }}" % password, "insecure": True, **extra}}


def run_checks(playbook, *tasks, env=None, **kwargs):
    plays = [{"hosts": "localhost", "gather_facts": False, "tasks": list(tasks)}]
    return playbook(plays, env={**SECRETS, **(env or {})}, **kwargs)


def test_module_existing_tag_passes_with_its_digest(token_registry, image, playbook):
    checked = dict(image_check(token_registry, [SHA], name="checked"), check_mode=True)
    run = run_checks(playbook, image_check(token_registry, [SHA]), checked)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for name in ("check", "checked"):
        r = run.task_results(name)
        assert r["changed"] is False and r["missing"] == [], r
        assert r["images"] == [{"image": f"{token_registry.host}/honeydue/api:{SHA}", "result": "exists",
                                "digest": image.manifest_digest, "media_type": oci.MEDIA_OCI_MANIFEST, "status": 200,
                                "code": None, "message": None}]
    assert run.changed() == 0
    assert [q["user"] for q in token_registry.token_server.requests[-2:]] == [USER, USER]


def test_module_missing_tag_fails_naming_the_image(token_registry, playbook):
    gone = f"{token_registry.host}/honeydue/api:{'0' * 40}"
    run = run_checks(playbook, image_check(token_registry, [SHA, "0" * 40]))
    assert run.rc == 2, run.stdout[-3000:] + run.stderr[-3000:]
    r = run.task_results("check")
    assert r["failed"] is True and r["changed"] is False and r["missing"] == [gone]
    assert f"{gone}: missing (404 MANIFEST_UNKNOWN)" in r["msg"] and "1 of 2 image(s)" in r["msg"], r["msg"]
    assert [i["result"] for i in r["images"]] == ["exists", "missing"]


def test_module_wrong_password_is_denied(token_registry, playbook):
    before = len(token_registry.token_server.requests)
    run = run_checks(playbook, image_check(token_registry, [SHA], password="LAB_WRONG_PASSWORD", fail_on_missing=False))
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (entry,) = run.task_results("check")["images"]
    assert (entry["result"], entry["status"], entry["code"]) == ("denied", 401, "UNAUTHORIZED"), entry
    assert entry["message"] == f"the token endpoint refused user '{USER}'"
    assert [q["status"] for q in token_registry.token_server.requests[before:]] == [401]


def test_module_never_shows_the_password_even_with_vvv(token_registry, playbook):
    tasks = (image_check(token_registry, [SHA]),
             dict(image_check(token_registry, ["0" * 40], name="missing"), ignore_errors=True),
             dict(image_check(token_registry, [SHA], name="denied", password="LAB_WRONG_PASSWORD"), ignore_errors=True))
    run = run_checks(playbook, *tasks, extra_args=["-vvv"])
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.task_results("check")["images"][0]["result"] == "exists"
    assert run.task_results("missing")["failed"] is True
    assert run.task_results("denied")["images"][0]["result"] == "denied"
    # and the operator's view: the repository's ansible.cfg callback (default, YAML results) at -vvv
    shown = run_checks(playbook, *tasks, extra_args=["-vvv"], env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"})
    assert shown.rc == 0, shown.stdout[-3000:] + shown.stderr[-3000:]
    assert "Using module file" in shown.stdout and "oci_image_exists.py" in shown.stdout
    assert "code: MANIFEST_UNKNOWN" in shown.stdout and "result: denied" in shown.stdout, shown.stdout[-3000:]
    for out in (run.stdout, run.stderr, shown.stdout, shown.stderr):
        assert PASSWORD not in out and WRONG_PASSWORD not in out
