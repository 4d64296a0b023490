# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small OCI distribution (registry v2) client: "does this image tag exist?" as a puller sees it.

The deploy checks ``HEAD /v2/<repository>/manifests/<tag>`` before it rolls a Deployment to that
tag, with the credentials the cluster pulls with, and follows the registry's authentication
challenge the way containerd and the Docker client do
(https://distribution.github.io/distribution/spec/auth/token/):

1. the request without credentials answers 401 with ``WWW-Authenticate``;
2. ``Basic realm=...``: send the request again with Basic credentials;
   ``Bearer realm=...,service=...,scope=...``: GET a token from the realm
   (``?service=<service>&scope=repository:<repository>:pull``) with Basic credentials (none when
   anonymous), then send the request again with ``Authorization: Bearer <token>`` (the token
   answer's ``token``, or ``access_token`` per the OAuth2 form).

Gitea's container registry answers (routers/api/packages/container/container.go, ReqContainerAccess)
``Bearer realm="<ROOT_URL>v2/token",service="container_registry",scope="*"``; older Gitea versions
sent ``Bearer realm="<ROOT_URL>v2/token"`` and a second header ``Basic``. Its token endpoint answers
``{"token": "..."}`` for any authenticated user (and for anonymous callers, as the ghost user), and
checks the permission when the token is used: a wrong password fails at the token endpoint (401),
a user without access fails at the manifest (401/403).

Results (:func:`manifest_exists`): ``exists`` (2xx, with the digest and media type), ``missing``
(404; the registry's error code, e.g. ``MANIFEST_UNKNOWN``, read with one GET since a HEAD answer
has no body), ``denied`` (401/403 after authenticating, or a refused token request) or ``error``
(anything else). The HTTP goes through a transport, ``transport(method, url, headers) -> Response``:
:func:`open_url_transport` (ansible's ``open_url``) or a test's script; the lab imports the same code.
"""
from __future__ import annotations

import base64
import json
import re
import urllib.parse

from ansible.module_utils.six.moves.http_client import HTTPException
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import open_url

MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
# What a puller accepts for a tag, most specific first (containerd sends the same four).
MANIFEST_ACCEPT = (MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST)

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
# distribution/reference: tag, repository path component, digest.
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
GIT_SHA_RE = re.compile(r"^[0-9a-f]{7,40}$")
_TOKEN_CHARS = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_PARAM_START = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+[ \t]*=(?!=)")


class RegistryError(Exception):
    """A reference that does not parse, or a registry that cannot be reached."""


# --- references -----------------------------------------------------------------------------------

def split_reference(reference):
    """``[host[:port]/]path[:tag][@digest]`` -> ``(host, repository, tag_or_digest)``.

    As Docker and containerd read it: the first component is a registry host when it contains a
    ``.`` or a ``:`` or is ``localhost``; otherwise the image is on Docker Hub (``docker.io``, with
    ``library/`` for a single-component name). The tag defaults to ``latest``; a digest wins over a tag.
    """
    if not isinstance(reference, str) or not reference or reference != reference.strip():
        raise RegistryError("invalid image reference %r" % (reference,))
    rest, digest = reference, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not DIGEST_RE.match(digest):
            raise RegistryError("invalid digest in image reference %r" % (reference,))
    host, path = DOCKER_HUB, rest
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host, path = first, remainder
    tag = None
    name, colon, maybe_tag = path.rpartition(":")
    if colon and "/" not in maybe_tag:
        path, tag = name, maybe_tag
        if not TAG_RE.match(tag):
            raise RegistryError("invalid tag %r in image reference %r" % (tag, reference))
    if host == DOCKER_HUB and "/" not in path:
        path = "library/" + path
    if not path or not all(COMPONENT_RE.match(c) for c in path.split("/")):
        raise RegistryError("invalid repository %r in image reference %r" % (path, reference))
    return host, path, digest or tag or "latest"


def image_reference(host, repository, git_sha):
    """The reference a deploy rolls to: ``<host>/<repository>:<git sha>`` (7 to 40 lowercase hex digits)."""
    if not isinstance(git_sha, str) or not GIT_SHA_RE.match(git_sha):
        raise RegistryError("a deploy tag is a git commit sha (7-40 lowercase hex digits), not %r" % (git_sha,))
    if not all(COMPONENT_RE.match(c) for c in repository.split("/")):
        raise RegistryError("invalid repository %r" % (repository,))
    return "%s/%s:%s" % (host, repository, git_sha)


def registry_base_url(host, insecure=False):
    """``https://<host>`` (Docker Hub's API host for ``docker.io``); ``http://`` when ``insecure``."""
    if host == DOCKER_HUB:
        host = DOCKER_HUB_API
    return "%s://%s" % ("http" if insecure else "https", host)


def manifest_url(base_url, repository, reference):
    return "%s/v2/%s/manifests/%s" % (base_url.rstrip("/"), repository, urllib.parse.quote(reference, safe=":@"))


def blob_url(base_url, repository, digest):
    return "%s/v2/%s/blobs/%s" % (base_url.rstrip("/"), repository, digest)


# --- WWW-Authenticate -----------------------------------------------------------------------------

class Challenge(object):
    """One authentication challenge: ``scheme`` (lowercase) and its ``params`` (names lowercase)."""

    def __init__(self, scheme, params=None):
        self.scheme = scheme.lower()
        self.params = dict(params or {})

    def __repr__(self):
        return "Challenge(%r, %r)" % (self.scheme, self.params)

    def __eq__(self, other):
        return isinstance(other, Challenge) and (self.scheme, self.params) == (other.scheme, other.params)

    @property
    def realm(self):
        return self.params.get("realm")


def _skip_ws(s, i):
    while i < len(s) and s[i] in " \t":
        i += 1
    return i


def _quoted(s, i):
    """The quoted-string starting at ``s[i] == '"'``: (value, index after the closing quote)."""
    out, i = [], i + 1
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            out.append(s[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise RegistryError("unterminated quoted string in WWW-Authenticate %r" % (s,))


def parse_www_authenticate(values):
    """Every challenge in one or more ``WWW-Authenticate`` values (RFC 7235 section 4.1).

    A value may hold several challenges (``Bearer realm="a",service="b", Basic realm="c"``) and a
    response may carry several headers; both are read in order. Parameter values are tokens or
    quoted strings (with backslash escapes); a token68 (``Negotiate abc==``) is kept as ``token68``.
    """
    if isinstance(values, str):
        values = [values]
    challenges = []
    for value in values or ():
        s, i, current = value, 0, None
        while True:
            i = _skip_ws(s, i)
            while i < len(s) and s[i] == ",":
                i = _skip_ws(s, i + 1)
            if i >= len(s):
                break
            m = _TOKEN_CHARS.match(s, i)
            if not m:
                raise RegistryError("cannot parse WWW-Authenticate %r at %d" % (s, i))
            word, j = m.group(0), m.end()
            k = _skip_ws(s, j)
            if current is not None and k < len(s) and s[k] == "=" and not s.startswith("==", k):
                # name=value: a parameter of the current challenge
                k = _skip_ws(s, k + 1)
                if k < len(s) and s[k] == '"':
                    val, i = _quoted(s, k)
                else:
                    vm = _TOKEN_CHARS.match(s, k)
                    val, i = (vm.group(0), vm.end()) if vm else ("", k)
                current.params[word.lower()] = val
                continue
            # a new challenge: scheme [token68 | params]
            current = Challenge(word)
            challenges.append(current)
            i = k
            t = _TOKEN68.match(s, i)
            if t and not _PARAM_START.match(s, i):
                after = _skip_ws(s, t.end())
                if after >= len(s) or s[after] == ",":
                    current.params["token68"] = t.group(0)
                    i = t.end()
    return challenges


def pick_challenge(challenges):
    """The challenge to answer: Bearer (with a realm) before Basic, as containerd prefers; else None."""
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme and (scheme == "basic" or challenge.realm):
                return challenge
    return None


def token_scopes(challenge, repository, actions=("pull",)):
    """The scopes to ask for: ``repository:<repository>:<actions>``, plus the challenge's own scope
    when it names something else (a registry's hint; Gitea's ``*`` is no scope)."""
    scopes = ["repository:%s:%s" % (repository, ",".join(actions))]
    hinted = (challenge.params.get("scope") or "").split(" ")
    for scope in hinted:
        if scope and scope != "*" and scope not in scopes:
            scopes.append(scope)
    return scopes


def token_url(challenge, repository, actions=("pull",)):
    """The realm URL with ``service`` and one ``scope`` parameter per scope."""
    realm = challenge.realm
    if not realm:
        raise RegistryError("a Bearer challenge without a realm cannot be answered")
    query = []
    if challenge.params.get("service"):
        query.append(("service", challenge.params["service"]))
    query.extend(("scope", s) for s in token_scopes(challenge, repository, actions))
    return realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)


def basic_authorization(username, password):
    raw = ("%s:%s" % (username, password)).encode("utf-8")
    return "Basic " + base64.b64encode(raw).decode("ascii")


def error_code(body):
    """The first ``errors[].code`` of a registry error document (``None`` when there is none)."""
    if not body:
        return None
    try:
        doc = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(doc, dict):
        errors = doc.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return errors[0].get("code")
        if isinstance(doc.get("error"), str):  # OAuth2-style token endpoint error
            return doc["error"]
    return None


# --- transport ------------------------------------------------------------------------------------

class Response(object):
    """``status``, ``headers`` (a list of (name, value), names as sent) and ``body`` (bytes)."""

    def __init__(self, status, headers, body=b""):
        self.status, self.headers, self.body = status, list(headers), body or b""

    def header(self, name):
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def header_values(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]


def open_url_transport(timeout=30, validate_certs=True):
    """A transport on ansible's ``open_url``: ``transport(method, url, headers) -> Response``.

    HTTP errors are answers (a Response), connection failures raise :class:`RegistryError`. No
    netrc, no Basic credentials of open_url's own: the Authorization header is :class:`Session`'s.
    """

    def transport(method, url, headers):
        try:
            resp = open_url(url, method=method, headers=dict(headers), timeout=timeout, validate_certs=validate_certs,
                            follow_redirects="safe", use_netrc=False, force_basic_auth=False)
            try:
                return Response(resp.getcode(), resp.headers.items(), resp.read() if method != "HEAD" else b"")
            finally:
                resp.close()
        except HTTPError as e:
            try:
                body = e.read() if method != "HEAD" else b""
            except Exception:
                body = b""
            return Response(e.code, e.headers.items() if e.headers else [], body)
        except (URLError, OSError, HTTPException) as e:
            raise RegistryError("cannot reach %s: %s" % (url.split("?", 1)[0], getattr(e, "reason", e))) from e
    return transport


# --- the authenticated session --------------------------------------------------------------------

class Session(object):
    """Requests to one registry as one puller, following the challenge once per repository.

    ``token_requests`` counts the token fetches, ``auth`` says what was used last
    (``none``/``basic``/``bearer``), ``token_error`` keeps a refused token request's (status, code).
    """

    def __init__(self, transport, base_url, username=None, password=None, actions=("pull",)):
        self.transport, self.base_url = transport, base_url.rstrip("/")
        self.username, self.password, self.actions = username, password, tuple(actions)
        self.token_requests = 0
        self.auth = "none"
        self.token_error = None
        self._authorization = {}  # repository -> Authorization header value

    def _credentials(self):
        return self.username is not None and self.password is not None

    def _answer(self, challenge, repository):
        """The Authorization value answering ``challenge``; None when it cannot be answered."""
        if challenge.scheme == "basic":
            if not self._credentials():
                return None
            self.auth = "basic"
            return basic_authorization(self.username, self.password)
        headers = {"Accept": "application/json"}
        if self._credentials():
            headers["Authorization"] = basic_authorization(self.username, self.password)
        self.token_requests += 1
        resp = self.transport("GET", token_url(challenge, repository, self.actions), headers)
        if resp.status != 200:
            self.token_error = (resp.status, error_code(resp.body))
            return None
        try:
            doc = json.loads(resp.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise RegistryError("the token endpoint %s answered no JSON" % (challenge.realm,)) from None
        token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
        if not token:
            raise RegistryError("the token endpoint %s answered no token" % (challenge.realm,))
        self.auth = "bearer"
        return "Bearer " + token

    def request(self, method, url, repository, headers=None):
        """``method url`` with ``headers``, answering a 401 challenge once (then remembered)."""
        headers = dict(headers or {})
        if repository in self._authorization:
            headers["Authorization"] = self._authorization[repository]
        resp = self.transport(method, url, headers)
        if resp.status != 401 or "Authorization" in headers:
            return resp
        challenge = pick_challenge(parse_www_authenticate(resp.header_values("WWW-Authenticate")))
        if challenge is None:
            return resp
        authorization = self._answer(challenge, repository)
        if authorization is None:
            return resp
        self._authorization[repository] = headers["Authorization"] = authorization
        return self.transport(method, url, headers)

    def get_json(self, url, repository, accept):
        resp = self.request("GET", url, repository, {"Accept": accept})
        if resp.status != 200:
            raise RegistryError("GET %s answered %d %s" % (url, resp.status, error_code(resp.body) or ""))
        return json.loads(resp.body.decode("utf-8")), resp

    def manifest_exists(self, repository, reference):
        """HEAD the manifest; the result dict described in the module docstring."""
        url = manifest_url(self.base_url, repository, reference)
        self.token_error = None
        accept = {"Accept": ", ".join(MANIFEST_ACCEPT)}
        resp = self.request("HEAD", url, repository, accept)
        result = {"url": url, "status": resp.status, "code": None, "digest": None, "media_type": None}
        if 200 <= resp.status < 300:
            result.update(state="exists", digest=resp.header("Docker-Content-Digest"),
                          media_type=(resp.header("Content-Type") or "").split(";")[0] or None)
        else:
            if self.token_error and resp.status == 401:
                # the token endpoint refused the credentials: that answer is the one to report
                result["status"], result["code"] = self.token_error
            else:
                # a HEAD answer has no body: one GET reads the registry's error code
                result["code"] = error_code(self.request("GET", url, repository, accept).body)
            if resp.status == 404:
                result["state"] = "missing"
            elif resp.status in (401, 403):
                result["state"] = "denied"
            else:
                result["state"] = "error"
        result.update(auth=self.auth, token_requests=self.token_requests)
        return result


def manifest_exists(transport, base_url, repository, reference, username=None, password=None):
    """One HEAD for ``repository:reference`` on ``base_url``, following the auth challenge."""
    return Session(transport, base_url, username, password).manifest_exists(repository, reference)


# --- several images, as the deploy checks them (module oci_image_exists) ---------------------------

REDACTED = "********"
IMAGE_RESULT_KEYS = ("image", "result", "digest", "media_type", "status", "code", "message")


def redact(text, secrets):
    """``text`` with every non-empty string of ``secrets`` replaced by ``********`` (None stays None)."""
    if text is None:
        return None
    for secret in sorted((s for s in secrets or () if isinstance(s, str) and s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def explain(state, status, code, repository, reference, username=None, token_refused=False):
    """Why a manifest is not pullable, in words (None when it ``exists``)."""
    who = "user %r" % (username,) if username is not None else "an anonymous puller"
    if state == "exists":
        return None
    if state == "missing":
        return "repository %s has no manifest %s (not pushed, or deleted)" % (repository, reference)
    if state == "denied":
        if token_refused:
            return "the token endpoint refused %s" % (who if username is not None else "anonymous access",)
        if username is None:
            return "the registry refuses anonymous pulls of %s; give username and password" % (repository,)
        return "the registry refuses %s a pull of %s" % (who, repository)
    return "unexpected answer %s from the registry" % (("%s %s" % (status, code or "")).strip(),)


def image_result(image, state, digest=None, media_type=None, status=None, code=None, message=None):
    """One entry of the module's ``images``: the keys of :data:`IMAGE_RESULT_KEYS`."""
    return {"image": image, "result": state, "digest": digest, "media_type": media_type, "status": status,
            "code": code, "message": message}


def check_images(images, transport, username=None, password=None, insecure=False):
    """HEAD each distinct reference of ``images`` (in order) as one puller; a list of :func:`image_result`.

    One :class:`Session` per registry host, so a registry's token is fetched once per repository.
    A reference that does not parse, or a registry that cannot be reached, is an ``error`` entry (its
    ``message`` says why, with ``password`` redacted); the other images are still checked. An empty
    ``username`` is an anonymous puller, like None (a role passing an unset vault variable as ``''``).
    """
    if not username:
        username = None
    sessions, seen, results = {}, set(), []
    puller = username if username is not None and password is not None else None  # as Session sees it
    for image in images:
        if image in seen:
            continue
        seen.add(image)
        try:
            host, repository, reference = split_reference(image)
            session = sessions.get(host)
            if session is None:
                session = sessions[host] = Session(transport, registry_base_url(host, insecure), username, password)
            head = session.manifest_exists(repository, reference)
        except RegistryError as exc:
            results.append(image_result(image, "error", message=redact(str(exc), [password])))
            continue
        state = head["state"]
        token_refused = state == "denied" and session.token_error is not None
        message = explain(state, head["status"], head["code"], repository, reference,
                          puller, token_refused)
        results.append(image_result(image, state, head["digest"], head["media_type"], head["status"], head["code"],
                                    redact(message, [password])))
    return results


def not_existing(results):
    """The references of the :func:`check_images` entries that are not ``exists``."""
    return [r["image"] for r in results if r["result"] != "exists"]


def describe(result):
    """``<image>: <result> (<status> <code>)``, plus the reason for ``denied`` and ``error``."""
    answer = " ".join(str(x) for x in (result["status"], result["code"]) if x is not None)
    line = "%s: %s" % (result["image"], result["result"])
    if answer:
        line += " (%s)" % (answer,)
    if result["message"] and result["result"] in ("denied", "error"):
        line += (": %s" if answer else " (%s)") % (result["message"],)
    return line


def failure_message(results, password=None):
    """The module's ``msg`` when images are not ``exists``: how many, then each one and why."""
    bad = [r for r in results if r["result"] != "exists"]
    text = "%d of %d image(s) cannot be pulled: %s" % (len(bad), len(results), "; ".join(describe(r) for r in bad))
    return redact(text, [password])
