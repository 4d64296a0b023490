"""oci_image_exists's entry point, main(), against a scripted registry (the module's open_url_transport patched)."""
from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.honeydue.infra.plugins.module_utils import _oci_registry as oci
from ansible_collections.honeydue.infra.plugins.module_utils._oci_registry import RegistryError, Response
from ansible_collections.honeydue.infra.plugins.modules import oci_image_exists

HOST = "git.example.com"
API = f"{HOST}/honeydue/api:3f2c1d9"
WORKER = f"{HOST}/honeydue/worker:3f2c1d9"
GONE = f"{HOST}/honeydue/api:0000000"
USER, PASSWORD = "deploy", "s3cret-pull-password-0123"
DIGEST = "sha256:" + "c" * 64


class Registry:
    """Gitea's container registry as a puller sees it: ``Bearer`` challenge, ``/v2/token`` issuing a token
    to anyone with valid (or no) credentials, the permission checked at the manifest. ``basic=True``
    answers a ``Basic`` challenge instead. ``calls`` records ``(method, url, headers)``."""

    def __init__(self, tags=(("honeydue/api", "3f2c1d9"), ("honeydue/worker", "3f2c1d9")), allowed=(USER,),
                 basic=False, down=()):
        self.tags, self.allowed, self.basic, self.down = set(tags), set(allowed), basic, set(down)
        self.users = {USER: PASSWORD, "other": "other-password"}
        self.calls = []

    def _user(self, authorization):
        name, _, password = base64.b64decode(authorization[len("Basic "):]).decode().partition(":")
        return name if self.users.get(name) == password else False

    def __call__(self, method, url, headers):
        self.calls.append((method, url, dict(headers)))
        parts = urlsplit(url)
        if parts.netloc in self.down:
            raise RegistryError(f"cannot reach {parts.scheme}://{parts.netloc}{parts.path}: [Errno 111] Connection refused")
        auth = headers.get("Authorization", "")
        if parts.path == "/v2/token":
            user = self._user(auth) if auth.startswith("Basic ") else None
            if user is False:
                return Response(401, [], b'{"errors":[{"code":"UNAUTHORIZED","message":"reqPackageAccess"}]}')
            return Response(200, [], json.dumps({"token": f"tok-{user or 'ghost'}"}).encode())

        def body(doc):  # a HEAD answer has no body
            return json.dumps(doc).encode() if method == "GET" else b""

        if self.basic:
            user = self._user(auth) if auth.startswith("Basic ") else None
            if not user:
                return Response(401, [("WWW-Authenticate", 'Basic realm="registry"')],
                                body({"errors": [{"code": "UNAUTHORIZED"}]}))
        else:
            if not auth.startswith("Bearer "):
                challenge = f'Bearer realm="{parts.scheme}://{parts.netloc}/v2/token",service="container_registry",scope="*"'
                return Response(401, [("WWW-Authenticate", challenge)], body({"errors": [{"code": "UNAUTHORIZED"}]}))
            user = auth[len("Bearer tok-"):]
        if user not in self.allowed:
            return Response(403, [], body({"errors": [{"code": "DENIED", "message": "denied"}]}))
        repository, _, tag = parts.path[len("/v2/"):].partition("/manifests/")
        if (repository, tag) not in self.tags:
            return Response(404, [], body({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}))
        return Response(200, [("Docker-Content-Digest", DIGEST), ("Content-Type", oci.MEDIA_OCI_INDEX)])

    def token_requests(self):
        return [c for c in self.calls if urlsplit(c[1]).path == "/v2/token"]


@pytest.fixture
def registry(monkeypatch):
    """``registry(**Registry kwargs)`` installs a scripted Registry as the module's transport; the
    factory's arguments land in ``registry.factory``."""
    def install(**kwargs):
        fake = Registry(**kwargs)

        def factory(**factory_kwargs):
            fake.factory = factory_kwargs
            return fake
        monkeypatch.setattr(oci_image_exists, "open_url_transport", factory)
        return fake
    return install


def args(images, **extra):
    return {"images": images, "username": USER, "password": PASSWORD, **extra}


def test_existing_tags_exist_after_the_bearer_challenge(run_module, registry):
    reg = registry()
    result = run_module(oci_image_exists.main, args([API, WORKER]))
    assert not result.get("failed"), result
    assert result["changed"] is False and result["missing"] == []
    assert result["images"] == [
        {"image": ref, "result": "exists", "digest": DIGEST, "media_type": oci.MEDIA_OCI_INDEX, "status": 200,
         "code": None, "message": None} for ref in (API, WORKER)]
    # per image: HEAD (401 Bearer), the token with Basic credentials and the repository's pull scope, HEAD again
    assert [(m, urlsplit(u).path) for m, u, _ in reg.calls[:3]] == [
        ("HEAD", "/v2/honeydue/api/manifests/3f2c1d9"), ("GET", "/v2/token"), ("HEAD", "/v2/honeydue/api/manifests/3f2c1d9")]
    token = reg.calls[1]
    assert token[2]["Authorization"] == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert parse_qs(urlsplit(token[1]).query) == {"service": ["container_registry"], "scope": ["repository:honeydue/api:pull"]}
    assert reg.calls[2][2]["Authorization"] == "Bearer tok-deploy"
    assert reg.calls[2][2]["Accept"].split(", ") == list(oci.MANIFEST_ACCEPT)
    assert len(reg.token_requests()) == 2 and len(reg.calls) == 6
    assert reg.factory == {"timeout": 30, "validate_certs": True}
    assert all(u.startswith(f"https://{HOST}/") for _, u, _ in reg.calls)
    assert PASSWORD not in json.dumps(result)


def test_a_missing_tag_fails_naming_the_image_and_the_registry_code(run_module, registry):
    registry()
    result = run_module(oci_image_exists.main, args([API, GONE]))
    assert result["failed"] is True and result["changed"] is False
    assert f"{GONE}: missing (404 MANIFEST_UNKNOWN)" in result["msg"] and "1 of 2 image(s)" in result["msg"]
    assert API not in result["msg"].split("cannot be pulled:", 1)[1]
    assert result["missing"] == [GONE]
    assert result["images"][1] == {
        "image": GONE, "result": "missing", "digest": None, "media_type": None, "status": 404, "code": "MANIFEST_UNKNOWN",
        "message": "repository honeydue/api has no manifest 0000000 (not pushed, or deleted)"}
    assert result["images"][0]["result"] == "exists"
    assert PASSWORD not in json.dumps(result)


def test_fail_on_missing_false_reports_and_succeeds(run_module, registry):
    registry()
    result = run_module(oci_image_exists.main, args([GONE, API, GONE], fail_on_missing=False))
    assert not result.get("failed") and result["changed"] is False
    assert result["missing"] == [GONE] and [r["image"] for r in result["images"]] == [GONE, API]


def test_a_wrong_password_is_denied_at_the_token_endpoint(run_module, registry):
    reg = registry()
    result = run_module(oci_image_exists.main, args([API], password="not-the-" + PASSWORD))
    assert result["failed"] is True
    assert result["msg"] == (f"1 of 1 image(s) cannot be pulled: {API}: denied (401 UNAUTHORIZED): "
                             "the token endpoint refused user 'deploy'")
    (entry,) = result["images"]
    assert (entry["result"], entry["status"], entry["code"], entry["digest"]) == ("denied", 401, "UNAUTHORIZED", None)
    assert len(reg.token_requests()) == 1
    assert PASSWORD not in json.dumps(result)


def test_a_user_without_access_and_an_anonymous_puller_are_denied_by_the_registry(run_module, registry):
    registry(allowed=())
    result = run_module(oci_image_exists.main, args([API]))
    assert f"{API}: denied (403 DENIED): the registry refuses user 'deploy' a pull of honeydue/api" in result["msg"]
    for anonymous in ({}, {"username": "", "password": ""}):  # omitted, or a role's unset vault variables
        reg = registry()
        result = run_module(oci_image_exists.main, {"images": [API], **anonymous})
        assert result["failed"] is True and result["images"][0]["code"] == "DENIED"
        assert "refuses anonymous pulls of honeydue/api; give username and password" in result["msg"]
        assert "Authorization" not in reg.token_requests()[0][2]


def test_basic_challenge_on_plain_http(run_module, registry):
    reg = registry(basic=True)
    result = run_module(oci_image_exists.main, args(["127.0.0.1:5000/honeydue/api:3f2c1d9"], insecure=True,
                                                    validate_certs=False, timeout=5))
    assert not result.get("failed"), result
    assert result["images"][0]["result"] == "exists" and reg.token_requests() == []
    assert [u for _, u, _ in reg.calls] == ["http://127.0.0.1:5000/v2/honeydue/api/manifests/3f2c1d9"] * 2
    assert reg.factory == {"timeout": 5, "validate_certs": False}


def test_check_mode_runs_the_same_and_changes_nothing(run_module, registry):
    reg = registry()
    normal = run_module(oci_image_exists.main, args([API, GONE], fail_on_missing=False))
    calls = list(reg.calls)
    reg = registry()
    checked = run_module(oci_image_exists.main, args([API, GONE], fail_on_missing=False), check_mode=True)
    assert checked == normal and checked["changed"] is False
    assert reg.calls == calls
    failed = run_module(oci_image_exists.main, args([GONE]), check_mode=True)
    assert failed["failed"] is True and failed["missing"] == [GONE]


def test_an_unreachable_registry_and_a_bad_reference_are_errors_and_the_rest_is_checked(run_module, registry):
    registry(down={"down.example"})
    result = run_module(oci_image_exists.main, args(["down.example/honeydue/api:1", "Bad/Ref", API]))
    assert result["failed"] is True and result["missing"] == ["down.example/honeydue/api:1", "Bad/Ref"]
    down, bad, ok = result["images"]
    assert (down["result"], down["status"], down["code"]) == ("error", None, None)
    assert down["message"] == "cannot reach https://down.example/v2/honeydue/api/manifests/1: [Errno 111] Connection refused"
    assert bad["result"] == "error" and "invalid repository" in bad["message"]
    assert ok["result"] == "exists"
    assert "down.example/honeydue/api:1: error (cannot reach https://down.example/" in result["msg"]
    assert "2 of 3 image(s)" in result["msg"]


def test_the_password_never_reaches_the_result(run_module, registry, monkeypatch):
    """Even when an error text carries it (a registry that echoes the Authorization back, say)."""
    reg = registry()

    def echoing(method, url, headers):
        if urlsplit(url).path == "/v2/token":
            raise RegistryError(f"token endpoint hung up after {base64.b64decode(headers['Authorization'][6:]).decode()}")
        return reg(method, url, headers)
    monkeypatch.setattr(oci_image_exists, "open_url_transport", lambda **_kw: echoing)
    result = run_module(oci_image_exists.main, args([API]))
    assert result["failed"] is True and result["images"][0]["result"] == "error"
    assert result["images"][0]["message"] == "token endpoint hung up after deploy:********"
    assert PASSWORD not in json.dumps(result)


def test_username_needs_a_password(run_module, registry):
    reg = registry()
    result = run_module(oci_image_exists.main, {"images": [API], "username": USER})
    assert result["failed"] is True and "parameters are required together: username, password" in result["msg"]
    assert reg.calls == []
