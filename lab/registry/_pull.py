"""What the K3s stand-in's kubelet does to "pull" an image: resolve the reference with the pull
credentials, read the manifest (an index picks linux/<arch>) and the image config, return the labels.

Credentials come from where a K3s node finds them: a pod's imagePullSecrets
(``kubernetes.io/dockerconfigjson``: ``{"auths": {"<host>": {"auth": base64(user:pass)}}}`` or
``username``/``password``) and the node's ``/etc/rancher/k3s/registries.yaml``
(``configs: {"<host>": {auth: {username, password}}}``). The HTTP side is the collection's own
client (plugins/module_utils/_oci_registry.py), so the kubelet stand-in and the deploy's tag check
follow the registry's auth challenge with the same code.
"""
from __future__ import annotations

import base64
import importlib.util
import sys
import types
from pathlib import Path


def _stdlib_ansible_urls() -> None:
    """Provide the three ``ansible.module_utils`` names _oci_registry imports from the standard library.

    Only where ansible is not installed: a lab node running the K3s stand-in's zipapp (lab/k3s/build.py
    carries _oci_registry.py as ``ansible_collections/honeydue/infra/plugins/module_utils/``). ``open_url``
    is urllib's: the same HTTPError answers and URLError/OSError failures as ansible's."""
    import http.client
    import ssl
    import urllib.error
    import urllib.request

    def open_url(url, method=None, headers=None, timeout=10, validate_certs=True, **_ignored):
        context = None if validate_certs else ssl._create_unverified_context()
        request = urllib.request.Request(url, method=method, headers=dict(headers or {}))
        return urllib.request.urlopen(request, timeout=timeout, context=context)  # noqa: S310 - registry URLs

    modules: dict[str, types.ModuleType] = {}
    packages = ("ansible", "ansible.module_utils", "ansible.module_utils.six", "ansible.module_utils.six.moves",
                "ansible.module_utils.six.moves.urllib")
    for name in packages:
        module = types.ModuleType(name)
        module.__path__ = []  # a package (of the modules below)
        modules[name] = module
    modules["ansible.module_utils.urls"] = types.ModuleType("ansible.module_utils.urls")
    modules["ansible.module_utils.urls"].open_url = open_url
    modules["ansible.module_utils.six.moves.http_client"] = http.client
    modules["ansible.module_utils.six.moves.urllib.error"] = urllib.error
    for name, module in modules.items():
        if sys.modules.get(name) is None:  # absent, or None as a blocked import
            sys.modules[name] = module


try:
    from ansible_collections.honeydue.infra.plugins.module_utils import _oci_registry as oci
except ImportError:
    if importlib.util.find_spec("ansible") is None:  # a lab node (the K3s zipapp): no ansible
        _stdlib_ansible_urls()
    _collections = Path(__file__).resolve().parents[2] / "collections"
    if _collections.is_dir():  # run outside pytest/ansible: the committed collections/ link
        sys.path.insert(0, str(_collections))
    from ansible_collections.honeydue.infra.plugins.module_utils import _oci_registry as oci

RegistryError = oci.RegistryError


def credentials_from_dockerconfig(doc: dict, host: str) -> tuple[str, str] | None:
    """(username, password) for ``host`` from a ``.dockerconfigjson`` document, or None."""
    for key, entry in (doc.get("auths") or {}).items():
        name = key.split("://", 1)[-1].split("/", 1)[0]
        if name != host or not isinstance(entry, dict):
            continue
        found = _user_password(entry)
        if found:
            return found
    return None


def _user_password(entry: dict) -> tuple[str, str] | None:
    """``username``/``password``, else ``auth`` (base64 of ``user:password``): both files' shape."""
    if entry.get("username") is not None:
        return entry["username"], entry.get("password", "")
    if entry.get("auth"):
        user, _, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
        return user, password
    return None


def credentials_from_registries_yaml(doc: dict, host: str) -> tuple[str, str] | None:
    """(username, password) for ``host`` from K3s's registries.yaml ``configs``, or None."""
    return _user_password(((doc.get("configs") or {}).get(host) or {}).get("auth") or {})


def pull_config(reference: str, credentials: tuple[str, str] | None = None, *, insecure: bool = True,
                architecture: str = "amd64", transport=None) -> dict:
    """Resolve ``reference``; ``{"reference", "digest", "manifest", "config", "labels", "auth", "token_requests"}``.

    Raises :class:`RegistryError` with the registry's status and error code when the pull would fail
    (the kubelet stand-in reports it as ``ErrImagePull``)."""
    host, repository, ref = oci.split_reference(reference)
    session = oci.Session(transport or oci.open_url_transport(), oci.registry_base_url(host, insecure=insecure),
                          *(credentials or (None, None)))
    head = session.manifest_exists(repository, ref)
    if head["state"] != "exists":
        raise RegistryError(f"pull {reference}: {head['state']} ({head['status']} {head['code'] or ''})".rstrip())
    manifest, resp = session.get_json(oci.manifest_url(session.base_url, repository, ref), repository,
                                      ", ".join(oci.MANIFEST_ACCEPT))
    digest = resp.header("Docker-Content-Digest") or head["digest"]
    if manifest.get("mediaType") in (oci.MEDIA_OCI_INDEX, oci.MEDIA_DOCKER_LIST) or "manifests" in manifest:
        chosen = next((m for m in manifest.get("manifests", [])
                       if (m.get("platform") or {}).get("os", "linux") == "linux"
                       and (m.get("platform") or {}).get("architecture", architecture) == architecture), None)
        if chosen is None:
            raise RegistryError(f"pull {reference}: no linux/{architecture} manifest in the index")
        manifest, _ = session.get_json(oci.manifest_url(session.base_url, repository, chosen["digest"]), repository,
                                       ", ".join(oci.MANIFEST_ACCEPT))
    config, _ = session.get_json(oci.blob_url(session.base_url, repository, manifest["config"]["digest"]), repository,
                                 "application/json, */*")
    return {"reference": reference, "digest": digest, "manifest": manifest, "config": config,
            "labels": (config.get("config") or {}).get("Labels") or {},
            "auth": session.auth, "token_requests": session.token_requests}
