"""The registry client's pure parts (module_utils/_oci_registry): WWW-Authenticate parsing, the token
request, image references, and the HEAD flow against a scripted transport."""
from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.honeydue.infra.plugins.module_utils import _oci_registry as oci
from ansible_collections.honeydue.infra.plugins.module_utils._oci_registry import (
    Challenge, RegistryError, Response, parse_www_authenticate, pick_challenge, split_reference, token_url)

# Gitea >= 1.20 (routers/api/packages/container/container.go, ReqContainerAccess)
GITEA = 'Bearer realm="https://git.example.com/v2/token",service="container_registry",scope="*"'


# --- WWW-Authenticate ---------------------------------------------------------------------------------

def test_gitea_bearer_challenge():
    assert parse_www_authenticate(GITEA) == [Challenge("Bearer", {
        "realm": "https://git.example.com/v2/token", "service": "container_registry", "scope": "*"})]


def test_distribution_bearer_challenge_with_scope_and_error():
    value = ('Bearer realm="http://127.0.0.1:5001/v2/token",service="container_registry",'
             'scope="repository:honeydue/api:pull",error="insufficient_scope"')
    (c,) = parse_www_authenticate(value)
    assert c.scheme == "bearer" and c.params["scope"] == "repository:honeydue/api:pull"
    assert c.params["error"] == "insufficient_scope"


def test_basic_challenges():
    assert parse_www_authenticate('Basic realm="honeydue lab registry"') == [Challenge("basic", {"realm": "honeydue lab registry"})]
    assert parse_www_authenticate("Basic") == [Challenge("basic")]


def test_several_challenges_in_one_value_and_across_headers():
    # old Gitea: a Bearer header and a bare Basic header; RFC 7235 also allows both in one value
    both = parse_www_authenticate(['Bearer realm="https://git.example.com/v2/token"', "Basic"])
    assert [c.scheme for c in both] == ["bearer", "basic"]
    one = parse_www_authenticate('Basic realm="a, b", Bearer realm="https://r/t", service=svc')
    assert one == [Challenge("basic", {"realm": "a, b"}), Challenge("bearer", {"realm": "https://r/t", "service": "svc"})]


def test_quoted_string_escapes_spacing_and_case():
    (c,) = parse_www_authenticate('BEARER  Realm = "x\\"y" ,  Service="s"')
    assert c.scheme == "bearer" and c.params == {"realm": 'x"y', "service": "s"}


def test_token68():
    assert parse_www_authenticate("Negotiate abc+/==, Basic") == [Challenge("negotiate", {"token68": "abc+/=="}),
                                                                    Challenge("basic")]


def test_unterminated_quote_is_an_error():
    with pytest.raises(RegistryError):
        parse_www_authenticate('Bearer realm="https://x')


def test_pick_prefers_bearer_with_realm():
    assert pick_challenge(parse_www_authenticate(["Basic", GITEA])).scheme == "bearer"
    assert pick_challenge(parse_www_authenticate(["Bearer service=x", "Basic"])).scheme == "basic"
    assert pick_challenge(parse_www_authenticate("Negotiate abc")) is None


# --- the token request --------------------------------------------------------------------------------

def test_token_url_for_gitea_asks_for_the_repository_pull_scope():
    (c,) = parse_www_authenticate(GITEA)
    url = token_url(c, "honeydue/api")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://git.example.com/v2/token"
    assert parse_qs(parts.query) == {"service": ["container_registry"], "scope": ["repository:honeydue/api:pull"]}


def test_token_url_keeps_a_different_hinted_scope_and_the_realm_query():
    c = Challenge("bearer", {"realm": "https://auth/token?account=x", "scope": "repository:other/img:pull"})
    url = token_url(c, "honeydue/api", ("pull", "push"))
    assert url.startswith("https://auth/token?account=x&")
    assert parse_qs(urlsplit(url).query)["scope"] == ["repository:honeydue/api:pull,push", "repository:other/img:pull"]
    same = Challenge("bearer", {"realm": "https://auth/token", "scope": "repository:honeydue/api:pull"})
    assert parse_qs(urlsplit(token_url(same, "honeydue/api")).query)["scope"] == ["repository:honeydue/api:pull"]


def test_token_url_needs_a_realm():
    with pytest.raises(RegistryError):
        token_url(Challenge("bearer", {"service": "x"}), "a/b")


# --- references ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("ref, expected", [
    ("git.example.com/honeydue/api:0123abc", ("git.example.com", "honeydue/api", "0123abc")),
    ("127.0.0.1:5000/honeydue/api:3f2c1d9e8b7a", ("127.0.0.1:5000", "honeydue/api", "3f2c1d9e8b7a")),
    ("localhost/app", ("localhost", "app", "latest")),
    ("nginx", ("docker.io", "library/nginx", "latest")),
    ("bitnami/redis:7.2", ("docker.io", "bitnami/redis", "7.2")),
    ("registry.example.com:443/a/b/c@sha256:" + "a" * 64, ("registry.example.com:443", "a/b/c", "sha256:" + "a" * 64)),
    ("git.example.com/honeydue/api:v1@sha256:" + "b" * 64, ("git.example.com", "honeydue/api", "sha256:" + "b" * 64)),
])
def test_split_reference(ref, expected):
    assert split_reference(ref) == expected


@pytest.mark.parametrize("ref", ["", " nginx", "Git.Example.com/UPPER/app:1", "host.io/app:-bad", "host.io/app@sha256",
                                 "host.io//app", "host.io/app:" + "x" * 129])
def test_split_reference_refuses(ref):
    with pytest.raises(RegistryError):
        split_reference(ref)


def test_image_reference_with_a_git_sha_round_trips():
    sha = "3f2c1d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"
    ref = oci.image_reference("git.example.com", "honeydue/api", sha)
    assert ref == f"git.example.com/honeydue/api:{sha}"
    assert split_reference(ref) == ("git.example.com", "honeydue/api", sha)
    for bad in ("main", "3F2C1D9", "abc12", sha + "0"):
        with pytest.raises(RegistryError):
            oci.image_reference("git.example.com", "honeydue/api", bad)


def test_accept_list_and_urls():
    assert oci.MANIFEST_ACCEPT == (
        "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json")
    assert oci.registry_base_url("docker.io") == "https://registry-1.docker.io"
    assert oci.registry_base_url("127.0.0.1:5000", insecure=True) == "http://127.0.0.1:5000"
    assert oci.manifest_url("https://r/", "a/b", "sha256:ab") == "https://r/v2/a/b/manifests/sha256:ab"


def test_error_code():
    assert oci.error_code(b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}') == "MANIFEST_UNKNOWN"
    assert oci.error_code(b'{"error":"invalid_grant"}') == "invalid_grant"
    assert oci.error_code(b"") is None and oci.error_code(b"<html>") is None


# --- the HEAD flow against a scripted registry ---------------------------------------------------------

class Gitea:
    """Gitea's container API as the client sees it: Bearer challenge, /v2/token, per-user access."""

    def __init__(self, tags=("0123abc",), users=None, allowed=("deploy",)):
        self.tags, self.users, self.allowed = set(tags), users or {"deploy": "pw", "other": "pw2"}, set(allowed)
        self.calls = []

    def __call__(self, method, url, headers):
        self.calls.append((method, url, dict(headers)))
        parts = urlsplit(url)
        auth = headers.get("Authorization", "")
        if parts.path == "/v2/token":
            user = None
            if auth.startswith("Basic "):
                name, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                if self.users.get(name) != pw:
                    return Response(401, [("Content-Type", "application/json")],
                                    b'{"errors":[{"code":"UNAUTHORIZED","message":"reqPackageAccess"}]}')
                user = name
            return Response(200, [], json.dumps({"token": f"tok-{user or 'ghost'}"}).encode())
        assert headers["Accept"].split(", ") == list(oci.MANIFEST_ACCEPT)
        if not auth.startswith("Bearer "):
            return Response(401, [("WWW-Authenticate", GITEA.replace("https://git.example.com", "https://g"))],
                            b'{"errors":[{"code":"UNAUTHORIZED"}]}' if method == "GET" else b"")
        user = auth[len("Bearer tok-"):]
        if user not in self.allowed:
            return Response(403, [], b'{"errors":[{"code":"DENIED","message":"denied"}]}' if method == "GET" else b"")
        tag = parts.path.rsplit("/", 1)[1]
        if tag not in self.tags:
            return Response(404, [], b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}' if method == "GET" else b"")
        return Response(200, [("Docker-Content-Digest", "sha256:" + "c" * 64),
                              ("Content-Type", "application/vnd.oci.image.index.v1+json")], b"")


def check(registry, tag, user=None, pw=None):
    return oci.manifest_exists(registry, "https://g", "honeydue/api", tag, user, pw)


def test_bearer_flow_exists():
    g = Gitea()
    r = check(g, "0123abc", "deploy", "pw")
    assert (r["state"], r["status"], r["auth"], r["token_requests"]) == ("exists", 200, "bearer", 1)
    assert r["digest"] == "sha256:" + "c" * 64 and r["media_type"] == oci.MEDIA_OCI_INDEX
    token_call = g.calls[1]
    assert token_call[0] == "GET" and token_call[1].startswith("https://g/v2/token?")
    assert token_call[2]["Authorization"] == "Basic " + base64.b64encode(b"deploy:pw").decode()
    assert g.calls[2][2]["Authorization"] == "Bearer tok-deploy"
    assert [c[0] for c in g.calls] == ["HEAD", "GET", "HEAD"]


def test_missing_reads_the_error_code_with_a_get():
    r = check(Gitea(), "fffffff", "deploy", "pw")
    assert (r["state"], r["status"], r["code"]) == ("missing", 404, "MANIFEST_UNKNOWN")


def test_wrong_password_is_denied_at_the_token_endpoint():
    r = check(Gitea(), "0123abc", "deploy", "nope")
    assert (r["state"], r["status"], r["code"], r["token_requests"]) == ("denied", 401, "UNAUTHORIZED", 1)


def test_user_without_access_and_anonymous_are_denied():
    r = check(Gitea(), "0123abc", "other", "pw2")
    assert (r["state"], r["status"], r["code"]) == ("denied", 403, "DENIED")
    r = check(Gitea(), "0123abc")
    assert (r["state"], r["status"], r["code"]) == ("denied", 403, "DENIED")  # the ghost user's token


def test_basic_challenge_retries_with_basic_credentials_once():
    calls = []

    def registry(method, url, headers):
        calls.append(dict(headers))
        if headers.get("Authorization") == "Basic " + base64.b64encode(b"u:p").decode():
            return Response(200, [("Docker-Content-Digest", "sha256:" + "d" * 64)])
        return Response(401, [("WWW-Authenticate", 'Basic realm="r"')],
                        b'{"errors":[{"code":"UNAUTHORIZED"}]}' if method == "GET" else b"")

    assert oci.manifest_exists(registry, "http://r", "a/b", "t", "u", "p")["state"] == "exists"
    assert len(calls) == 2
    calls.clear()
    r = oci.manifest_exists(registry, "http://r", "a/b", "t", "u", "bad")
    assert (r["state"], r["status"], r["code"], r["auth"]) == ("denied", 401, "UNAUTHORIZED", "basic")
    r = oci.manifest_exists(registry, "http://r", "a/b", "t")
    assert (r["state"], r["auth"]) == ("denied", "none")


def test_server_error_is_an_error():
    r = oci.manifest_exists(lambda m, u, h: Response(502, [], b""), "http://r", "a/b", "t")
    assert (r["state"], r["status"]) == ("error", 502)


# --- several images (module oci_image_exists) -------------------------------------------------------

def test_redact_replaces_every_secret_longest_first():
    assert oci.redact("user deploy:pw-long and pw", ["pw", "pw-long", "", None]) == "user deploy:******** and ********"
    assert oci.redact(None, ["x"]) is None and oci.redact("text", None) == "text"


def test_check_images_one_session_per_host_and_one_token_per_repository():
    g = Gitea(tags=("0123abc", "4567def"))
    results = oci.check_images(["g.example/honeydue/api:0123abc", "g.example/honeydue/api:4567def", "g.example/honeydue/api:0123abc",
                                "g.example/honeydue/api:fffffff"], g, "deploy", "pw")
    assert [(r["image"], r["result"]) for r in results] == [
        ("g.example/honeydue/api:0123abc", "exists"), ("g.example/honeydue/api:4567def", "exists"),
        ("g.example/honeydue/api:fffffff", "missing")]
    assert sorted(results[0]) == sorted(oci.IMAGE_RESULT_KEYS)
    assert [c[1].split("?")[0] for c in g.calls if "/v2/token" in c[1]] == ["https://g/v2/token"]  # the challenge's realm
    assert oci.not_existing(results) == ["g.example/honeydue/api:fffffff"]
    assert {c[1].split("/v2/")[0] for c in g.calls if "/manifests/" in c[1]} == {"https://g.example"}


def test_check_images_insecure_is_plain_http():
    urls = []

    def registry(method, url, headers):
        urls.append(url)
        return Response(200, [("Docker-Content-Digest", "sha256:" + "e" * 64)])

    (r,) = oci.check_images(["127.0.0.1:5000/a/b:1"], registry, insecure=True)
    assert r == oci.image_result("127.0.0.1:5000/a/b:1", "exists", "sha256:" + "e" * 64, None, 200)
    assert urls == ["http://127.0.0.1:5000/v2/a/b/manifests/1"]


def test_check_images_results_and_reasons():
    g = Gitea()
    wrong, = oci.check_images(["g.example/honeydue/api:0123abc"], g, "deploy", "nope")
    assert (wrong["result"], wrong["status"], wrong["code"]) == ("denied", 401, "UNAUTHORIZED")
    assert wrong["message"] == "the token endpoint refused user 'deploy'"
    other, = oci.check_images(["g.example/honeydue/api:0123abc"], Gitea(), "other", "pw2")
    assert other["message"] == "the registry refuses user 'other' a pull of honeydue/api"
    # a username without a password is no credential (Session's rule): anonymous
    anonymous, = oci.check_images(["g.example/honeydue/api:0123abc"], Gitea(), "deploy", None)
    assert anonymous["message"] == "the registry refuses anonymous pulls of honeydue/api; give username and password"
    # an empty username (a role's unset vault variable) is anonymous too: no Basic header at the token endpoint
    g = Gitea()
    empty, = oci.check_images(["g.example/honeydue/api:0123abc"], g, "", "")
    assert empty["message"] == anonymous["message"] and "Authorization" not in g.calls[1][2]
    bad, = oci.check_images(["g.example/honeydue/api:-x"], Gitea())
    assert bad == oci.image_result("g.example/honeydue/api:-x", "error",
                                   message="invalid tag '-x' in image reference 'g.example/honeydue/api:-x'")
    broken, = oci.check_images(["g.example/a/b:1"], lambda m, u, h: Response(502, [], b'{"errors":[{"code":"UNAVAILABLE"}]}'))
    assert (broken["result"], broken["message"]) == ("error", "unexpected answer 502 UNAVAILABLE from the registry")


def test_check_images_redacts_the_password_from_error_texts():
    def hangs_up(method, url, headers):
        raise RegistryError("cannot reach %s: reset after %s" % (url, headers.get("Authorization", "sekrit-pw")))

    (r,) = oci.check_images(["g.example/a/b:1"], hangs_up, "u", "sekrit-pw")
    assert r["result"] == "error" and "sekrit-pw" not in r["message"] and r["message"].endswith("reset after ********")


def test_describe_and_failure_message():
    ok = oci.image_result("r/a:1", "exists", "sha256:" + "a" * 64, oci.MEDIA_OCI_MANIFEST, 200)
    gone = oci.image_result("git.example/honeydue/api:3f2c1d9", "missing", status=404, code="MANIFEST_UNKNOWN",
                            message="repository honeydue/api has no manifest 3f2c1d9 (not pushed, or deleted)")
    denied = oci.image_result("r/b:1", "denied", status=401, code="UNAUTHORIZED", message="the token endpoint refused user 'u'")
    down = oci.image_result("r/c:1", "error", message="cannot reach https://r/v2/c/manifests/1: timed out (pw)")
    assert oci.describe(gone) == "git.example/honeydue/api:3f2c1d9: missing (404 MANIFEST_UNKNOWN)"
    assert oci.describe(denied) == "r/b:1: denied (401 UNAUTHORIZED): the token endpoint refused user 'u'"
    assert oci.describe(down) == "r/c:1: error (cannot reach https://r/v2/c/manifests/1: timed out (pw))"
    assert oci.describe(oci.image_result("r/d:1", "error", status=500, message="x")) == "r/d:1: error (500): x"
    assert oci.failure_message([ok, gone, denied, down], password="pw") == (
        "3 of 4 image(s) cannot be pulled: git.example/honeydue/api:3f2c1d9: missing (404 MANIFEST_UNKNOWN); "
        "r/b:1: denied (401 UNAUTHORIZED): the token endpoint refused user 'u'; "
        "r/c:1: error (cannot reach https://r/v2/c/manifests/1: timed out (********))")
