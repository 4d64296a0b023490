"""A kubelet for a lab node: runs the Pods bound to its node as real processes.

It is an API client like the real kubelet: it lists the Pods whose ``spec.nodeName`` is its node,
and for each one sets up the pod's network namespace (``_podnet``, unless ``hostNetwork``), pulls
the images (``ImageSource``: the lab registry, or the images K3s preloads), starts one process per
container (``_podserver`` for app images, ``_ingress_proxy`` for Traefik), runs the probes with the
kubelet's rules (``_kubeprobes``), restarts with back-off, and writes ``pods/<name>/status``
(``_podstatus``). Pods that disappear, or get a ``deletionTimestamp``, are stopped (SIGTERM, then
SIGKILL after ``terminationGracePeriodSeconds``) and, when terminating, deleted with grace 0.

    python -m lab.k3s._kubelet --api http://10.99.0.1:8080 --token T --node k3s-node-1 --state /run/lab-kubelet
"""
from __future__ import annotations

import argparse
import base64
import datetime
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import _ingress_routes, _kubeprobes, _podnet
from ._podstatus import Pulled, container_status, pod_status, pull_failed

TRAEFIK_IMAGES = ("rancher/mirrored-library-traefik", "docker.io/rancher/mirrored-library-traefik", "traefik",
                  "docker.io/library/traefik", "docker.io/traefik")
SYNC_SECONDS = 0.5


class ApiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Api:
    """The few calls a kubelet makes (bearer token; TLS verified against ``ca`` when given)."""

    def __init__(self, url: str, token: str = "", ca: str | None = None,
                 client: tuple[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.base = urllib.parse.urlsplit(self.url).path
        self.token = token
        self._local = threading.local()  # one kept-alive connection per thread
        self.context = ssl.create_default_context(cafile=ca) if ca else None
        if client is not None:  # K3s's kubelet authenticates with its client certificate
            self.context = self.context or ssl.create_default_context()
            self.context.load_cert_chain(*client)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request on this thread's kept-alive connection (the kubelet's client keeps its
        connections open as client-go does: no TLS handshake per call). A kept connection the server
        closed while idle is reopened once; any other failure is the caller's (OSError/ApiError)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {**({"Authorization": f"Bearer {self.token}"} if self.token else {}),
                   "Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": "k3s/v1.34 (linux/amd64) kubelet"}
        conn = self._connection()
        for attempt in (0, 1):
            reused = conn.sock is not None
            try:
                conn.request(method, self.base + path, body=data, headers=headers)
                answer = conn.getresponse()
                raw = answer.read()
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected,
                    http.client.CannotSendRequest) as err:
                conn.close()
                if reused and attempt == 0:
                    continue
                raise OSError(f"{self.url}: {err!r}") from None
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                raise OSError(f"{self.url}: {err!r}") from None
            if answer.status >= 400:
                raise ApiError(answer.status, raw.decode(errors="replace"))
            return json.loads(raw or b"{}")
        raise OSError(f"{self.url}: connection lost")  # pragma: no cover - the loop returns or raises

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            parts = urllib.parse.urlsplit(self.url)
            if parts.scheme == "https":
                conn = http.client.HTTPSConnection(parts.hostname or "127.0.0.1", parts.port or 443, timeout=5,
                                                   context=self.context or ssl.create_default_context())
            else:
                conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=5)
            self._local.conn = conn
        return conn

    def items(self, path: str) -> list[dict[str, Any]]:
        try:
            return self.call("GET", path).get("items") or []
        except ApiError as err:
            if err.code == 404:
                return []
            raise


class ImageSource(Protocol):
    def resolve(self, image: str, pull_secrets: list[dict[str, Any]]) -> tuple[dict[str, str], str]:
        """The image's config labels and digest; raises ``PullError`` with containerd's message."""


class PullError(Exception):
    pass


@dataclass
class StaticImages:
    """Images known by name (tests without a registry); K3s's preloaded system images always exist."""

    known: dict[str, dict[str, str]] = field(default_factory=dict)

    def resolve(self, image: str, pull_secrets: list[dict[str, Any]]) -> tuple[dict[str, str], str]:
        if is_preloaded(image) or image.split(":")[0] in self.known or image in self.known:
            return self.known.get(image, {}), "sha256:" + "0" * 64
        ref = image if ":" in image.rsplit("/", 1)[-1] else image + ":latest"
        raise PullError(f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": '
                        f'{ref}: not found')


@dataclass
class RegistryImages:
    """Pulls as containerd on a K3s node does: credentials from the pod's imagePullSecrets, then the
    node's ``registries.yaml`` ``configs``; plain HTTP only when ``registries.yaml`` mirrors the host to
    an ``http://`` endpoint; K3s's own images are preloaded (airgap); anything else is pulled, and a
    failure carries containerd's message shape (``failed to pull and unpack image ...``)."""

    registries_yaml: Path | None = None
    preloaded: dict[str, dict[str, str]] = field(default_factory=dict)

    def _registries(self) -> dict[str, Any]:
        if self.registries_yaml is None or not self.registries_yaml.exists():
            return {}
        import yaml
        return yaml.safe_load(self.registries_yaml.read_text()) or {}

    def resolve(self, image: str, pull_secrets: list[dict[str, Any]]) -> tuple[dict[str, str], str]:
        if is_preloaded(image) or image in self.preloaded:
            return self.preloaded.get(image, {}), "sha256:" + "0" * 64
        from lab.registry import _pull

        ref = image if ":" in image.rsplit("/", 1)[-1] or "@" in image else image + ":latest"
        host = ref.split("/", 1)[0] if "/" in ref and ("." in ref.split("/", 1)[0] or ":" in ref.split("/", 1)[0]
                                                       or ref.startswith("localhost")) else "docker.io"
        regs = self._registries()
        creds = None
        for secret in pull_secrets:
            raw = (secret.get("data") or {}).get(".dockerconfigjson")
            if raw:
                creds = _pull.credentials_from_dockerconfig(json.loads(base64.b64decode(raw)), host)
            if creds:
                break
        failure = ""
        for target, insecure in pull_endpoints(regs, host):
            # the pod's pull secret is for the image's registry; registries.yaml's configs are per endpoint host
            auth = creds or _pull.credentials_from_registries_yaml(regs, target)
            try:
                got = _pull.pull_config(target + ref[len(host):] if ref.startswith(host + "/") else ref, auth,
                                        insecure=insecure)
                return got["labels"], got["digest"]
            except _pull.RegistryError as err:
                failure = _containerd_reason(ref, str(err))
            except OSError as err:
                failure = f"failed to do request: {err}"
        raise PullError(f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": {failure}')


def pull_endpoints(regs: dict[str, Any], host: str) -> list[tuple[str, bool]]:
    """Where containerd on a K3s node pulls ``host``'s images from, in order: the registries.yaml
    mirror endpoints of ``host`` (or of ``"*"``), then ``host`` itself over HTTPS (the default
    endpoint). Each is (host[:port], plain HTTP)."""
    mirrors = regs.get("mirrors") or {}
    endpoints = ((mirrors.get(host) or mirrors.get("*") or {}).get("endpoint")) or []
    out = []
    for e in endpoints:
        url = urllib.parse.urlsplit(str(e) if "://" in str(e) else f"https://{e}")
        if url.netloc and (url.netloc, url.scheme == "http") not in out:
            out.append((url.netloc, url.scheme == "http"))
    if (host, False) not in out and (host, True) not in out:
        out.append((host, False))
    return out


def _containerd_reason(ref: str, err: str) -> str:
    if "missing" in err:
        return f"{ref}: not found"
    if "denied" in err:
        return ("pull access denied, repository does not exist or may require authorization: "
                "authorization failed: 401 Unauthorized")
    return err


HELM_CHART_LABEL = "helmcharts.helm.cattle.io/chart"


def is_traefik(image: str) -> bool:
    return image.rsplit(":", 1)[0] in TRAEFIK_IMAGES


# K3s's own images (the airgap tarball a K3s node imports at start): never pulled from a registry.
SYSTEM_REPOSITORIES = ("rancher/mirrored-coredns-coredns", "rancher/local-path-provisioner",
                       "rancher/mirrored-metrics-server", "rancher/klipper-helm", "rancher/mirrored-pause",
                       "rancher/klipper-lb")


def is_preloaded(image: str) -> bool:
    repo = image.split("@", 1)[0]
    if ":" in repo.rsplit("/", 1)[-1]:
        repo = repo.rsplit(":", 1)[0]
    return is_traefik(image) or repo.removeprefix("docker.io/") in SYSTEM_REPOSITORIES


@dataclass
class Running:
    proc: subprocess.Popen[bytes] | None = None
    state: _kubeprobes.Container | None = None
    pulled: Pulled | None = None
    exit_code: int | None = None


@dataclass
class PodRecord:
    uid: str
    ns: str
    name: str
    ip: str = ""
    started: float = field(default_factory=time.time)
    containers: dict[str, Running] = field(default_factory=dict)
    last_status: dict[str, Any] | None = None


class Kubelet:
    def __init__(self, api: Api, node: str, images: ImageSource, state_dir: Path, *, network: bool = True,
                 podserver: list[str] | None = None, proxy: list[str] | None = None) -> None:
        self.api, self.node, self.images, self.state_dir = api, node, images, state_dir
        self.network = network
        self.podserver = podserver or [sys.executable, "-m", "lab.k3s._podserver"]
        self.proxy = proxy or [sys.executable, "-m", "lab.k3s._ingress_proxy"]
        self.pods: dict[str, PodRecord] = {}
        self.node_obj: dict[str, Any] = {}
        self.node_ready = False
        self._traefik: dict[str, tuple[dict[str, Any], Path]] = {}  # pod uid -> (entry points, pod dir)
        self.terminating: set[str] = set()

    # -- the node -----------------------------------------------------------------------------
    @property
    def host_ip(self) -> str:
        for a in (self.node_obj.get("status") or {}).get("addresses") or []:
            if a["type"] == "InternalIP":
                return a["address"]
        return "127.0.0.1"

    @property
    def pod_cidr(self) -> str:
        return (self.node_obj.get("spec") or {}).get("podCIDR", "")

    def _node(self) -> None:
        self.node_obj = self.api.call("GET", f"/api/v1/nodes/{self.node}")
        if self.network and self.pod_cidr and not self.node_ready:
            _podnet.run(_podnet.node_commands(self.pod_cidr))
            self.node_ready = True
        if self.network and self.pod_cidr:
            peers = {}
            for n in self.api.items("/api/v1/nodes"):
                ips = [a["address"] for a in n["status"].get("addresses", []) if a["type"] == "InternalIP"]
                cidr = (n.get("spec") or {}).get("podCIDR")
                if cidr and ips and n["metadata"]["name"] != self.node:
                    peers[cidr] = ips[0]
            _podnet.run(_podnet.route_commands(self.pod_cidr, peers, _podnet.present_routes()))

    # -- one pass -----------------------------------------------------------------------------
    def sync(self) -> None:
        self._node()
        selector = urllib.parse.quote(f"spec.nodeName={self.node}")
        wanted = {p["metadata"]["uid"]: p for p in self.api.items(f"/api/v1/pods?fieldSelector={selector}")}
        for uid in list(self.pods):
            if uid not in wanted and uid not in self.terminating:
                self._stop_pod(self.pods.pop(uid), grace=0)
        for uid, pod in wanted.items():
            if pod["metadata"].get("deletionTimestamp"):
                if uid in self.pods and uid not in self.terminating:
                    self.terminating.add(uid)
                    threading.Thread(target=self._terminate, args=(pod, self.pods[uid]), daemon=True).start()
                elif uid not in self.pods:
                    self._confirm_deleted(pod)
                continue
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            if HELM_CHART_LABEL in (pod["metadata"].get("labels") or {}):
                continue  # the helm-install Job's pod: the stand-in's helm-controller is its container
            self._sync_pod(pod)
        if any(self._traefik_running(r) for r in self.pods.values()):
            self._write_routes()

    def _terminate(self, pod: dict[str, Any], rec: PodRecord) -> None:
        """Graceful deletion: each container's preStop (``sleep.seconds``, or an exec ``sleep N``) runs
        first, then SIGTERM, SIGKILL when ``deletionGracePeriodSeconds`` (counting the preStop) is over;
        then the pod is deleted for good (grace 0), as the kubelet confirms a deletion."""
        grace = float(pod["metadata"].get("deletionGracePeriodSeconds",
                                          pod["spec"].get("terminationGracePeriodSeconds", 30)))
        started = time.monotonic()
        hooks = [prestop_seconds(c) for c in pod["spec"].get("containers") or []]
        time.sleep(min(max(hooks or [0.0]), grace))
        left = max(0.0, grace - (time.monotonic() - started))
        self._stop_pod(rec, grace=left)
        try:
            self._confirm_deleted(pod)
        finally:
            self.pods.pop(rec.uid, None)
            self.terminating.discard(rec.uid)

    def _confirm_deleted(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        try:
            self.api.call("DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                          {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                           "preconditions": {"uid": meta["uid"]}})
        except ApiError as err:
            if err.code not in (404, 409):
                raise

    def _sync_pod(self, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        rec = self.pods.get(meta["uid"])
        if rec is None:
            rec = self.pods[meta["uid"]] = PodRecord(meta["uid"], meta["namespace"], meta["name"])
            rec.ip = self._sandbox(pod)
        now = time.time()
        secrets = self._pull_secrets(pod)
        statuses = []
        for c in spec.get("containers") or []:
            run = rec.containers.setdefault(c["name"], Running(pulled=Pulled(image=c["image"])))
            self._container(pod, rec, c, run, secrets, now)
            statuses.append(container_status(c["name"], run.state, run.pulled or Pulled(c["image"]), pod, now,
                                              run.exit_code))
        status = pod_status(pod, statuses, pod_ip=rec.ip, host_ip=self.host_ip, started=rec.started,
                            previous=pod.get("status"))
        if _comparable(status) != _comparable(pod.get("status") or {}):
            try:
                self.api.call("PUT", f"/api/v1/namespaces/{rec.ns}/pods/{rec.name}/status", {**pod, "status": status})
            except ApiError as err:
                if err.code not in (404, 409):
                    raise

    def _sandbox(self, pod: dict[str, Any]) -> str:
        if pod["spec"].get("hostNetwork") or not self.network:
            return self.host_ip
        used = [r.ip for r in self.pods.values() if r.ip and r.ip != self.host_ip]
        ip = _podnet.next_address(self.pod_cidr, used)
        _podnet.run(_podnet.pod_commands(pod["metadata"]["uid"], ip, self.pod_cidr))
        return ip

    def _pull_secrets(self, pod: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for ref in pod["spec"].get("imagePullSecrets") or []:
            try:
                out.append(self.api.call("GET", f"/api/v1/namespaces/{pod['metadata']['namespace']}/secrets/"
                                                f"{ref['name']}"))
            except ApiError:
                continue  # the kubelet pulls anonymously when a pull secret is missing
        return out

    def _container(self, pod: dict[str, Any], rec: PodRecord, c: dict[str, Any], run: Running,
                   secrets: list[dict[str, Any]], now: float) -> None:
        assert run.pulled is not None
        if not run.pulled.ok:
            if now < run.pulled.retry_at:
                return
            try:
                labels, digest = self.images.resolve(c["image"], secrets)
                run.pulled = Pulled(image=c["image"], ok=True, labels=labels, digest=digest)
            except PullError as err:
                run.pulled = pull_failed(run.pulled, str(err), now)
                return
        if run.proc is not None and run.proc.poll() is not None:
            code = run.proc.returncode
            run.exit_code = 128 - code if code < 0 else code  # killed by signal N: 128 + N, as containerd reports
            run.proc = None
            run.state = _kubeprobes.stopped(run.state or _kubeprobes.Container(), now,
                                            "Completed" if run.exit_code == 0 else "Error")
        if run.proc is None:
            policy = pod["spec"].get("restartPolicy", "Always")
            if run.state is None or _kubeprobes.may_restart(run.state, now, policy):
                run.proc = self._start(pod, rec, c, run.pulled)
                run.state = _kubeprobes.start(c, now, run.state)
            return
        assert run.state is not None
        for kind in _kubeprobes.due(c, run.state, now):
            ok = self._probe(c, c[kind], rec, run)
            run.state, action = _kubeprobes.observe(c, run.state, kind, ok, now)
            if action == "restart":
                self._kill(run.proc, pod["spec"].get("terminationGracePeriodSeconds", 30))
                run.proc, run.exit_code = None, 137
                break

    # -- processes ------------------------------------------------------------------------------
    def _start(self, pod: dict[str, Any], rec: PodRecord, c: dict[str, Any], pulled: Pulled) -> subprocess.Popen[bytes]:
        meta = pod["metadata"]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "POD_NAME": meta["name"],
               "POD_NAMESPACE": meta["namespace"], "NODE_NAME": self.node, "POD_IMAGE": c["image"], "POD_IP": rec.ip,
               "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "LAB_POD_UID": rec.uid}
        if os.environ.get("LAB_MINILAB_PREFIX"):
            env["LAB_MINILAB_PREFIX"] = os.environ["LAB_MINILAB_PREFIX"]  # lets the mini-lab find its processes
        for e in c.get("env") or []:
            if "value" in e:
                env[e["name"]] = str(e["value"])
        logdir = self.state_dir / rec.uid
        logdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if is_traefik(c["image"]):
            argv = [*self.proxy, "--config", str(logdir / "traefik.json")]
            self._write_traefik_config(pod, c, logdir)
        else:
            ports, tls_ports = listening_ports(c)
            argv = [*self.podserver, "--address", "0.0.0.0", "--labels", json.dumps(pulled.labels)]  # noqa: S104
            for p in ports:
                argv += ["--port", str(p)]
            for p in tls_ports:
                argv += ["--tls-port", str(p)]
        if not pod["spec"].get("hostNetwork") and self.network:
            argv = ["ip", "netns", "exec", _podnet.netns_name(rec.uid), *argv]
        log = open(logdir / f"{c['name']}.log", "ab")  # noqa: SIM115 - owned by the child
        try:
            proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                    cwd=os.environ.get("LAB_KUBELET_CWD") or None)
        finally:
            log.close()
        (logdir / f"{c['name']}.pid").write_text(f"{proc.pid}\n")  # like crictl inspect's pid, for tests and people
        return proc

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes] | None, grace: float) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(min(grace, 10))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _stop_pod(self, rec: PodRecord, grace: float) -> None:
        for run in rec.containers.values():
            self._kill(run.proc, grace)
        if self.network and rec.ip != self.host_ip:
            _podnet.run(_podnet.pod_teardown_commands(rec.uid))

    def _probe(self, c: dict[str, Any], probe: dict[str, Any], rec: PodRecord, run: Running) -> bool:
        timeout = _kubeprobes.probe_setting(probe, "timeoutSeconds")
        if "exec" in probe:
            return run.proc is not None and run.proc.poll() is None
        action = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc") or {}
        port = _port(c, action.get("port"))
        host = action.get("host") or rec.ip
        if "httpGet" in probe:
            headers = {h["name"]: h["value"] for h in action.get("httpHeaders") or []}
            url = f"{action.get('scheme', 'HTTP').lower()}://{host}:{port}{action.get('path', '/')}"
            try:
                insecure = ssl._create_unverified_context() if url.startswith("https:") else None  # noqa: S323
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers),  # noqa: S310
                                            timeout=timeout, context=insecure) as answer:
                    return _kubeprobes.http_success(answer.status)
            except urllib.error.HTTPError as err:
                return _kubeprobes.http_success(err.code)
            except OSError:
                return False
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            return True
        except OSError:
            return False

    # -- Traefik --------------------------------------------------------------------------------
    @staticmethod
    def _traefik_running(rec: PodRecord) -> bool:
        return any(r.pulled is not None and is_traefik(r.pulled.image) and r.proc is not None
                   for r in rec.containers.values())

    def _write_traefik_config(self, pod: dict[str, Any], c: dict[str, Any], where: Path) -> None:
        self._traefik[pod["metadata"]["uid"]] = (traefik_entrypoints(c.get("args") or []), where)
        self._write_routes()

    def _write_routes(self) -> None:
        table = _ingress_routes.routes(self.api.items("/apis/networking.k8s.io/v1/ingresses"),
                                       self.api.items("/api/v1/services"),
                                       self.api.items("/apis/discovery.k8s.io/v1/endpointslices"),
                                       self.api.items("/apis/networking.k8s.io/v1/ingressclasses"))
        routes = [{"host": r.host, "path": r.path, "exact": r.exact, "backends": [list(b) for b in r.backends],
                   "service": r.service} for r in table]
        for uid, (config, where) in list(self._traefik.items()):
            if uid not in self.pods:
                continue
            eps = json.loads(json.dumps(config["entrypoints"]))
            if any("tls" in ep for ep in eps.values()):
                tls = self._tls_material(where)
                for ep in eps.values():
                    if "tls" in ep:
                        ep["tls"] = tls
            doc = json.dumps({**config, "entrypoints": eps, "routes": routes}, sort_keys=True)
            target = where / "traefik.json"
            if target.exists() and target.read_text() == doc:
                continue
            tmp = where / "traefik.json.tmp"
            tmp.write_text(doc)
            tmp.replace(target)


    def _tls_material(self, where: Path) -> dict[str, Any]:
        """Traefik's TLS from its CRDs: TLSStore ``default``'s ``defaultCertificate`` (else Traefik's
        self-signed "TRAEFIK DEFAULT CERT"), TLSOption ``default``'s ``clientAuth`` (CAs from the
        secrets' ``tls.ca`` or ``ca.crt``). Files are written 0600 and only when their content changes."""
        stores = [s for s in self.api.items("/apis/traefik.io/v1alpha1/tlsstores") if s["metadata"]["name"] == "default"]
        options = [o for o in self.api.items("/apis/traefik.io/v1alpha1/tlsoptions")
                   if o["metadata"]["name"] == "default"]
        cert = key = b""
        if stores:
            secret = ((stores[0].get("spec") or {}).get("defaultCertificate") or {}).get("secretName")
            data = self._secret_data(stores[0]["metadata"].get("namespace", ""), secret) if secret else {}
            cert, key = data.get("tls.crt", b""), data.get("tls.key", b"")
        if not cert or not key:
            cert, key = _default_cert(where)
        out: dict[str, Any] = {"cert": _write_private(where / "tls.crt", cert),
                               "key": _write_private(where / "tls.key", key), "client_auth": "NoClientCert"}
        if options:
            auth = (options[0].get("spec") or {}).get("clientAuth") or {}
            cas = b""
            for name in auth.get("secretNames") or []:
                data = self._secret_data(options[0]["metadata"].get("namespace", ""), name)
                cas += data.get("tls.ca", b"") or data.get("ca.crt", b"")
            if cas:
                out["client_ca"] = _write_private(where / "client-ca.crt", cas)
                out["client_auth"] = auth.get("clientAuthType") or "NoClientCert"
        return out

    def _secret_data(self, namespace: str, name: str) -> dict[str, bytes]:
        try:
            secret = self.api.call("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        except ApiError:
            return {}
        return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


def _write_private(path: Path, data: bytes) -> str:
    if not path.exists() or path.read_bytes() != data:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.touch(mode=0o600)
        tmp.write_bytes(data)
        tmp.replace(path)
    return str(path)


def _default_cert(where: Path) -> tuple[bytes, bytes]:
    """Traefik's own self-signed default certificate (CN ``TRAEFIK DEFAULT CERT``), made once per pod."""
    crt, key = where / "default.crt", where / "default.key"
    if crt.exists() and key.exists():
        return crt.read_bytes(), key.read_bytes()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TRAEFIK DEFAULT CERT")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=365)).sign(private, hashes.SHA256()))
    pem_cert = cert.public_bytes(serialization.Encoding.PEM)
    pem_key = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    _write_private(crt, pem_cert)
    _write_private(key, pem_key)
    return pem_cert, pem_key


def traefik_entrypoints(args: list[str]) -> dict[str, Any]:
    """Entry points, forwarded headers and access log from Traefik's static-configuration flags
    (``--entryPoints.<n>.address=:80/tcp``, ``--entryPoints.<n>.forwardedHeaders.trustedIPs=a,b``,
    ``--entryPoints.<n>.forwardedHeaders.insecure``, ``--entryPoints.<n>.http.tls=true``, ``--accesslog``)."""
    eps: dict[str, dict[str, Any]] = {}
    access = False
    for arg in args:
        key, _, value = arg.lstrip("-").partition("=")
        parts = key.split(".")
        if parts[0].lower() == "accesslog" and len(parts) == 1:
            access = value.lower() in ("", "true")
        if parts[0].lower() != "entrypoints" or len(parts) < 3:
            continue
        ep = eps.setdefault(parts[1], {"address": "0.0.0.0", "trusted_ips": [], "insecure": False})  # noqa: S104
        rest = ".".join(parts[2:]).lower()
        if rest == "address":
            ep["port"] = int(value.split(":")[-1].split("/")[0])
        elif rest == "forwardedheaders.trustedips":
            ep["trusted_ips"] = [v for v in value.split(",") if v]
        elif rest == "forwardedheaders.insecure":
            ep["insecure"] = value.lower() in ("", "true")
        elif rest == "http.tls" and value.lower() in ("", "true"):
            ep["tls"] = {}
    return {"entrypoints": {k: v for k, v in eps.items() if "port" in v}, "access_log": access}


def prestop_seconds(c: dict[str, Any]) -> float:
    """How long a container's preStop hook holds the stop: ``sleep.seconds`` (Kubernetes 1.30+), or an
    exec hook that is a ``sleep N`` (``["sleep","5"]`` or ``["/bin/sh","-c","sleep 5"]``); others take no time."""
    hook = ((c.get("lifecycle") or {}).get("preStop")) or {}
    if "sleep" in hook:
        return float(hook["sleep"].get("seconds", 0))
    words = " ".join((hook.get("exec") or {}).get("command") or []).split()
    if "sleep" in words and words.index("sleep") + 1 < len(words):
        try:
            return float(words[words.index("sleep") + 1])
        except ValueError:
            return 0.0
    return 0.0


def listening_ports(c: dict[str, Any]) -> tuple[list[int], list[int]]:
    """The TCP ports a lab container serves: its declared TCP ports and its probes' ports (an app
    listens where its probes look), the ones HTTPS probes use with TLS; 8080 when nothing says."""
    tls = set()
    plain = {p["containerPort"] for p in c.get("ports") or [] if p.get("protocol", "TCP") == "TCP"}
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = c.get(kind) or {}
        action = probe.get("httpGet") or probe.get("tcpSocket")
        port = _port(c, (action or {}).get("port"))
        if not port:
            continue
        if (probe.get("httpGet") or {}).get("scheme", "HTTP").upper() == "HTTPS":
            tls.add(port)
        else:
            plain.add(port)
    plain -= tls
    return (sorted(plain) or ([] if tls else [8080])), sorted(tls)


def _port(c: dict[str, Any], port: Any) -> int:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in c.get("ports") or []:
        if p.get("name") == port:
            return p["containerPort"]
    return 0


def _comparable(status: dict[str, Any]) -> Any:
    """A status without its time stamps of probes (writes only when something real changed)."""
    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in ("lastProbeTime", "lastHeartbeatTime")}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v
    return strip(status)


def spawn(*, api: str, ca: Path, cert: Path, key: Path, node: str, data_dir: Path,
          registries: str | None = None) -> subprocess.Popen[bytes] | None:
    """Start the kubelet beside a K3s server or agent (``k3s standin-kubelet``; from the repository:
    ``python -m lab.k3s``): pods under ``<data_dir>/agent/pods``, its log in ``agent/kubelet.log``
    (0600), the node's ``registries.yaml`` for pulls. ``K3S_STANDIN_KUBELET=none``: none (None)."""
    if os.environ.get("K3S_STANDIN_KUBELET", "process") != "process":
        return None
    import zipfile
    exe = sys.argv[0]
    packed = zipfile.is_zipfile(exe)
    cmd = [exe] if packed else [sys.executable, "-m", "lab.k3s"]
    agent = Path(data_dir) / "agent"
    (agent / "pods").mkdir(parents=True, exist_ok=True)
    args = [*cmd, "standin-kubelet", "--api", api, "--ca", str(ca), "--client-cert", str(cert),
            "--client-key", str(key), "--node", node, "--state", str(agent / "pods"),
            "--registries", str(registries or "/etc/rancher/k3s/registries.yaml")]
    if packed:
        args += ["--self-exe", exe]
    log_path = agent / "kubelet.log"
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return subprocess.Popen(args, stdout=fd, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        os.close(fd)


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    """SIGTERM (the kubelet stops its pods within their grace), SIGKILL after ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True)
    parser.add_argument("--token-file", type=Path, help="a 0600 file holding the bearer token")
    parser.add_argument("--ca", help="the API's CA bundle (TLS verified against it)")
    parser.add_argument("--client-cert", help="client certificate (with --client-key) instead of a token")
    parser.add_argument("--client-key")
    parser.add_argument("--node", required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--images", type=Path, help="JSON {image: labels} for a registry-less lab")
    parser.add_argument("--registries", type=Path, help="the node's registries.yaml: pull from real registries")
    parser.add_argument("--no-network", action="store_true")
    parser.add_argument("--self-exe", help="the k3s executable (containers run as its standin-pod/standin-traefik)")
    args = parser.parse_args(argv)
    token = args.token_file.read_text().strip() if args.token_file else ""
    client = (args.client_cert, args.client_key) if args.client_cert else None
    known = json.loads(args.images.read_text()) if args.images else {}
    images: ImageSource = RegistryImages(args.registries, known) if args.registries else StaticImages(known)
    spawn: dict[str, list[str]] = {}
    if args.self_exe:  # inside the K3s stand-in's zipapp: containers are its own subcommands
        spawn = {"podserver": [args.self_exe, "standin-pod"], "proxy": [args.self_exe, "standin-traefik"]}
    kubelet = Kubelet(Api(args.api, token, args.ca, client), args.node, images, args.state,
                      network=not args.no_network, **spawn)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        try:
            kubelet.sync()
        except (ApiError, OSError, RuntimeError) as err:
            print(f"kubelet {args.node}: {err}", file=sys.stderr, flush=True)
        time.sleep(SYNC_SECONDS)
    for rec in list(kubelet.pods.values()):
        kubelet._stop_pod(rec, grace=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
