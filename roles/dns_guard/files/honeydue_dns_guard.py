# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""honeydue-dns-guard: keeps the Cloudflare record sets equal to the nodes whose Traefik answers.

Installed by the honeydue.infra.dns_guard role on every K3s server, in
/usr/local/lib/honeydue-dns-guard/ beside the collection's ``_dns_guard.py`` (the rules),
``_cf_plan.py`` (the Cloudflare planner) and ``_cloudflare.py`` (the API client, its retries and
429 handling), and run by systemd as ``python3 -I -B honeydue_dns_guard.py --config FILE``. It needs
the node's python3 only (standard library; PyYAML when present, else the configuration must be
JSON): ``_cloudflare.py`` imports ansible's ``open_url``, which this program replaces with a small
urllib transport (:func:`install_ansible_shim`) so that no ``ansible`` package is needed.

Every ``health.interval`` seconds each instance tries to acquire or renew the Lease
``kubernetes.lease_namespace/lease_name``; only the holder (:class:`_dns_guard.LeaderElector`) checks
every node's health URL, reads the drain annotations of the Nodes, and converges DNS through the
planner. Every change is logged (to the journal) and recorded as a core/v1 Event on the Node.
On SIGTERM/SIGINT the holder gives the Lease up, so another instance takes over within one interval.

``--check-config FILE`` validates a configuration and prints the detection time it gives.
"""
from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import shutil
import signal
import ssl
import sys
import tempfile
import threading
import time
import types
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _dns_guard as guard  # noqa: E402 - beside this file, found through sys.path above

LOG = logging.getLogger("honeydue-dns-guard")
USER_AGENT = "honeydue-dns-guard/1"


# -- configuration ---------------------------------------------------------------------------------
def read_document(path):
    """A YAML (PyYAML, python3-yaml) or JSON file."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        import yaml  # pylint: disable=import-outside-toplevel
    except ImportError:
        return json.loads(text)
    return yaml.safe_load(text)


def read_secret(path):
    with open(path, encoding="utf-8") as fh:
        value = fh.read().strip()
    if not value:
        raise guard.ConfigError(f"{path} is empty")
    return value


# -- _cloudflare.py without ansible --------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0913 - urllib's signature
        return None  # a 3xx is answered as an HTTPError, as open_url(follow_redirects="none") does


class _Answer:
    def __init__(self, status, raw):
        self._status, self._raw = status, raw

    def read(self):
        return self._raw

    def getcode(self):
        return self._status


def open_url(url, method="GET", data=None, timeout=30, headers=None, validate_certs=True,
             follow_redirects="none", **_ignored):
    """The part of ``ansible.module_utils.urls.open_url`` that ``_cloudflare.py`` uses, on urllib:
    certificates verified, no redirects followed, the environment's proxy settings honoured. 4xx/5xx
    raise ``urllib.error.HTTPError``, no answer ``URLError``/``OSError``, as open_url does."""
    context = ssl.create_default_context()
    if not validate_certs:  # never asked for by _cloudflare.py
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    handlers = [urllib.request.HTTPSHandler(context=context)]
    if follow_redirects == "none":
        handlers.append(_NoRedirect())
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"User-Agent": USER_AGENT, **(headers or {})})
    with opener.open(request, timeout=timeout) as resp:
        return _Answer(resp.status, resp.read())


def install_ansible_shim():
    """Register the modules ``_cloudflare.py`` imports from ansible, made of the standard library."""
    import http.client  # pylint: disable=import-outside-toplevel

    def module(name, **attrs):
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        sys.modules[name] = mod
        return mod

    module("ansible")
    module("ansible.module_utils")
    module("ansible.module_utils.basic", env_fallback=lambda *args, **kwargs: None)
    module("ansible.module_utils.six")
    module("ansible.module_utils.six.moves")
    module("ansible.module_utils.six.moves.http_client", HTTPException=http.client.HTTPException)
    module("ansible.module_utils.six.moves.urllib")
    module("ansible.module_utils.six.moves.urllib.error", HTTPError=urllib.error.HTTPError,
           URLError=urllib.error.URLError)
    module("ansible.module_utils.six.moves.urllib.parse", urlencode=urllib.parse.urlencode)
    module("ansible.module_utils.urls", open_url=open_url)


# -- the Kubernetes API --------------------------------------------------------------------------
class KubeError(Exception):
    def __init__(self, status, reason, message):
        self.status, self.reason = status, reason
        super().__init__(f"{status or 'no answer'} {reason}: {message}")


class Kube:
    """A small client for the calls the guard makes (Leases, Nodes, Events), authenticated with the
    node's K3s admin kubeconfig (client certificate, ``/etc/rancher/k3s/k3s.yaml``) or a bearer token
    file (a ServiceAccount token). Embedded certificate data is written to a private directory only
    for as long as ``ssl`` needs to load it."""

    def __init__(self, cfg):
        self.timeout = cfg["timeout"]
        self.token_file = cfg["token_file"]
        self.token = None
        server, ca_file, ca_data, cert, key, insecure = cfg["api_url"], cfg["ca_file"], None, None, None, False
        cert_file, key_file = cfg["client_cert"], cfg["client_key"]
        if cfg["kubeconfig"] and not cfg["api_url"]:
            kc = _kubeconfig(read_document(cfg["kubeconfig"]))
            server, insecure = kc["server"], kc["insecure"]
            ca_file = ca_file or kc["ca_file"]
            ca_data = kc["ca_data"]
            cert, key = kc["cert_data"], kc["key_data"]
            cert_file, key_file = cert_file or kc["cert_file"], key_file or kc["key_file"]
            self.token = kc["token"]
        self.server = server.rstrip("/")
        self.context = None
        if self.server.startswith("https://"):
            self.context = ssl.create_default_context(cafile=ca_file or None, cadata=ca_data)
            if insecure:
                LOG.warning("kubeconfig says insecure-skip-tls-verify: the API server's certificate is not verified")
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE
            if cert and key:
                _load_chain_from_memory(self.context, cert, key)
            elif cert_file and key_file:
                self.context.load_cert_chain(cert_file, key_file)
        handlers = [urllib.request.ProxyHandler({}), _NoRedirect()]
        if self.context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=self.context))
        self.opener = urllib.request.build_opener(*handlers)

    def _bearer(self):
        if self.token_file:  # read every time: projected ServiceAccount tokens are rotated
            return read_secret(self.token_file)
        return self.token

    def request(self, method, path, body=None, content_type="application/json"):
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        token = self._bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.server + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read() or b"{}"
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = {}
            raise KubeError(exc.code, doc.get("reason") or exc.reason, doc.get("message") or "") from None
        except (urllib.error.URLError, OSError) as exc:
            raise KubeError(None, "Unreachable", str(getattr(exc, "reason", exc))) from None
        return json.loads(raw) if raw else {}

    def get(self, path):
        """The object at ``path``; None when it does not exist."""
        try:
            return self.request("GET", path)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise


def _kubeconfig(doc):
    """server, CA and credentials of a kubeconfig's current context."""
    if not isinstance(doc, dict):
        raise guard.ConfigError("the kubeconfig is not a mapping")

    def named(kind, name):
        for entry in doc.get(kind) or []:
            if entry.get("name") == name:
                return entry
        raise guard.ConfigError(f"kubeconfig: no {kind[:-1]} named {name!r}")

    current = doc.get("current-context") or ((doc.get("contexts") or [{}])[0]).get("name")
    context = named("contexts", current)["context"]
    cluster = named("clusters", context["cluster"])["cluster"]
    user = named("users", context["user"]).get("user") or {}

    def data(entry, key):
        value = entry.get(f"{key}-data")
        return base64.b64decode(value).decode() if value else None

    return {"server": cluster["server"], "insecure": bool(cluster.get("insecure-skip-tls-verify")),
            "ca_file": cluster.get("certificate-authority"), "ca_data": data(cluster, "certificate-authority"),
            "cert_file": user.get("client-certificate"), "cert_data": data(user, "client-certificate"),
            "key_file": user.get("client-key"), "key_data": data(user, "client-key"), "token": user.get("token")}


def _load_chain_from_memory(context, cert_pem, key_pem):
    """``load_cert_chain`` takes files only: write them to a 0700 directory (the unit's private
    RuntimeDirectory when there is one), load them, remove them at once."""
    base = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0] or None
    tmp = tempfile.mkdtemp(prefix="kube-", dir=base)
    try:
        paths = []
        for name, content in (("client.crt", cert_pem), ("client.key", key_pem)):
            path = os.path.join(tmp, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(content)
            paths.append(path)
        context.load_cert_chain(*paths)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- health checks ---------------------------------------------------------------------------------
class Checker:
    """GET each node's health URL at once (one thread per node); ``(ok, error)`` per node name."""

    def __init__(self, health, nodes):
        self.health = health
        self.pool = ThreadPoolExecutor(max_workers=max(1, len(nodes)), thread_name_prefix="check")
        context = ssl.create_default_context()
        context.check_hostname = False  # a liveness check of our own node by address, not of its identity
        context.verify_mode = ssl.CERT_NONE
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect(),
                                                  urllib.request.HTTPSHandler(context=context))

    def one(self, node):
        headers = {"User-Agent": USER_AGENT, "Connection": "close"}
        if self.health["host_header"]:
            headers["Host"] = self.health["host_header"]
        req = urllib.request.Request(node["health_url"], headers=headers, method="GET")
        try:
            with self.opener.open(req, timeout=self.health["timeout"]) as resp:
                resp.read(4096)
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            return False, f"no answer: {getattr(exc, 'reason', exc)}"
        if status != self.health["expect_status"]:
            return False, f"HTTP {status}"
        return True, ""

    def all(self, nodes):
        futures = {n["name"]: self.pool.submit(self.one, n) for n in nodes}
        deadline = time.monotonic() + self.health["timeout"] + 0.5
        out = {}
        for name, future in futures.items():
            try:
                out[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                out[name] = (False, f"no answer within {self.health['timeout']:g} s")
        return out


# -- the guard -------------------------------------------------------------------------------------
class Guard:
    def __init__(self, cfg, kube, cloudflare, checker):
        import _cf_plan  # pylint: disable=import-outside-toplevel
        import _cloudflare  # pylint: disable=import-outside-toplevel

        self.plan, self.cf_errors = _cf_plan, (_cloudflare.CloudflareError,)
        self.cfg, self.kube, self.cf, self.checker = cfg, kube, cloudflare, checker
        k = cfg["kubernetes"]
        self.elector = guard.LeaderElector(cfg["identity"], k["lease_namespace"], k["lease_name"],
                                           k["lease_duration"], k["renew_deadline"])
        self.lease_path = (f"/apis/coordination.k8s.io/v1/namespaces/{k['lease_namespace']}/leases/"
                           f"{k['lease_name']}")
        self.fqdns = {self.plan.fqdn(n, cfg["zone"]) for n in cfg["names"]}
        self.by_name = {n["name"]: n for n in cfg["nodes"]}
        self.stop = threading.Event()
        self.lock = threading.Lock()  # the elector, shared by the lease thread and the rounds
        self.was_leading = False
        self._reset()

    def _reset(self):
        self.ready = False
        self.zone_id = self.cfg["cloudflare"]["zone_id"] or None
        self.health = {}
        self.published = []
        self.drained = set()
        self.node_meta = {}
        self.last_sync = 0.0
        self.dirty = False
        self.notes = {}  # warnings already recorded (not repeated every round)

    # -- the loop ------------------------------------------------------------------------------
    def run(self):
        h = self.cfg["health"]
        LOG.info("started as %s: %d nodes, names %s; a node is taken out after %d failed checks every %g s "
                 "(detection within %g s) and put back after %d good ones (within %g s)",
                 self.cfg["identity"], len(self.cfg["nodes"]), ", ".join(sorted(self.fqdns)), h["fail_threshold"],
                 h["interval"], guard.detection_seconds(h), h["rise_threshold"], guard.restore_seconds(h))
        # The Lease is renewed in its own thread (as client-go does), so a slow round (a Cloudflare
        # call waiting out a 429) never costs the leadership.
        elector = threading.Thread(target=self.every_interval, args=(self.elect,), name="lease", daemon=True)
        elector.start()
        self.every_interval(self.round)
        elector.join(timeout=self.cfg["kubernetes"]["timeout"] + 1)
        self.release()

    def every_interval(self, step):
        interval = self.cfg["health"]["interval"]
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                step()
            except Exception:  # noqa: BLE001 - one bad round must not stop the guard
                LOG.exception("%s failed", step.__name__)
            self.stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def round(self):
        leading = self.leading()
        if leading and not self.was_leading:
            LOG.info("leader: holding Lease %s/%s", self.cfg["kubernetes"]["lease_namespace"],
                     self.cfg["kubernetes"]["lease_name"])
        elif self.was_leading and not leading:
            LOG.warning("no longer leader (the Lease was not renewed within %g s, or another holds it): not acting",
                        self.cfg["kubernetes"]["renew_deadline"])
            self._reset()
        self.was_leading = leading
        if not leading:
            return
        if not self.ready:
            self.take_over()
        if self.ready:
            self.act()

    def leading(self):
        with self.lock:
            return self.elector.leading(time.monotonic())

    def elect(self):
        """One round of acquire-or-renew (the lease thread)."""
        try:
            lease = self.kube.get(self.lease_path)
        except KubeError as exc:
            LOG.warning("reading the Lease failed: %s", exc)
            return
        with self.lock:
            action, body = self.elector.attempt(lease, time.time(), time.monotonic())
        if action == "wait":
            return
        try:
            if action == "create":
                answer = self.kube.request("POST", self.lease_path.rsplit("/", 1)[0], body)
            else:
                answer = self.kube.request("PUT", self.lease_path, body)
        except KubeError as exc:
            if exc.status in (409,):  # another candidate wrote first
                LOG.debug("Lease write lost a race: %s", exc)
            else:
                LOG.warning("writing the Lease failed: %s", exc)
            return
        with self.lock:
            self.elector.succeeded(answer, time.monotonic())

    def release(self):
        self.checker.pool.shutdown(wait=False)
        with self.lock:
            if not self.elector.holds():
                return
        try:
            lease = self.kube.get(self.lease_path)
            with self.lock:
                body = self.elector.release(lease, time.time())
            if body is not None:
                self.kube.request("PUT", self.lease_path, body)
                LOG.info("gave the Lease up")
        except KubeError as exc:
            LOG.warning("giving the Lease up failed (it expires by itself): %s", exc)
        self.elector.released()

    # -- as leader -------------------------------------------------------------------------------
    def take_over(self):
        """Find the zone and what DNS holds now; start every node's health from that."""
        try:
            if not self.zone_id:
                self.zone_id = self.cf.zone_id(self.cfg["zone"])
            records = self.cf.list_records(self.zone_id)
        except self.cf_errors as exc:
            LOG.warning("Cloudflare: %s", exc)
            return
        self.published = guard.published_nodes(self.cfg, records, self.fqdns)
        ips = [self.by_name[n]["ipv4"] for n in self.published]
        self.health = guard.initial_health(self.cfg["nodes"], ips)
        self.last_sync = time.monotonic()
        self.dirty = True  # converge once: the record sets may differ between names
        self.ready = True
        LOG.info("DNS holds %s now", ", ".join(self.published) or "no configured node")

    def act(self):
        h = self.cfg["health"]
        for name, (ok, error) in self.checker.all(self.cfg["nodes"]).items():
            self.health[name], transition = guard.observe(self.health[name], ok, h["fail_threshold"],
                                                          h["rise_threshold"], error)
            if transition == "down":
                LOG.warning("%s failed %d checks in a row (%s): unhealthy", name, h["fail_threshold"], error)
            elif transition == "up":
                LOG.info("%s passed %d checks in a row: healthy", name, h["rise_threshold"])
        self.read_nodes()
        sel = guard.select(self.cfg["nodes"], self.health, self.drained, self.published)
        if sel["keep_current"]:
            self.note("all-down", self.cfg["node_name"], "DNSRecordsKept",
                      "no node passes its health check: the records are kept as they are "
                      f"({', '.join(self.published) or 'none'}); never fewer than one record")
            return
        self.notes.pop("all-down", None)
        for name, why in sel["held"].items():
            self.note(f"held-{name}", name, "DNSDrainHeld", f"{name}: {why}")
        for key in [k for k in self.notes if k.startswith("held-") and k[5:] not in sel["held"]]:
            self.notes.pop(key)
        due = time.monotonic() - self.last_sync >= self.cfg["cloudflare"]["resync_interval"]
        if sel["serving"] != self.published or due or self.dirty:
            self.converge(sel["serving"])
        self.acknowledge_drains()

    def read_nodes(self):
        """The drain annotation of every configured Node (kept from the last read when the API fails)."""
        try:
            listing = self.kube.request("GET", "/api/v1/nodes")
        except KubeError as exc:
            LOG.warning("listing the Nodes failed (drains as last seen): %s", exc)
            return
        key = self.cfg["kubernetes"]["drain_annotation"]
        self.node_meta = {i["metadata"]["name"]: i["metadata"] for i in listing.get("items") or []}
        drained = {n for n, meta in self.node_meta.items() if n in self.by_name
                   and guard.is_drained(meta.get("annotations"), key)}
        for name in sorted(drained - self.drained):
            LOG.info("%s: drain requested (%s)", name, key)
        for name in sorted(self.drained - drained):
            LOG.info("%s: drain lifted", name)
        self.drained = drained

    def converge(self, serving):
        if not self.leading():
            return
        desired = self.plan.desired_sets(guard.desired_records(self.cfg, serving), self.cfg["zone"])
        try:
            done = self.plan.converge(lambda: self.cf.list_records(self.zone_id), lambda part: self.cf.batch(self.zone_id, part),
                                      desired, api_errors=self.cf_errors)
        except self.plan.ConvergeError as exc:
            LOG.error("Cloudflare write failed (%d operation(s) applied): %s", self.plan.count(exc.applied), exc)
            self.dirty = True
            return
        except self.cf_errors as exc:
            LOG.error("Cloudflare: %s", exc)
            self.dirty = True
            return
        self.dirty = False
        self.last_sync = time.monotonic()
        before = guard.published_nodes(self.cfg, done["before"], self.fqdns)
        after = guard.published_nodes(self.cfg, done["after"], self.fqdns)
        if done["changed"]:
            ops = done["operations"]
            LOG.info("DNS changed: %s -> %s (%d deleted, %d patched, %d created)", ", ".join(before) or "none",
                     ", ".join(after) or "none", len(ops["deletes"]), len(ops["patches"]), len(ops["posts"]))
        removed, restored = guard.changes(self.published, after)
        self.published = after
        for name in removed:
            self.record_change(name, removed=True)
        for name in restored:
            self.record_change(name, removed=False)

    def record_change(self, name, removed):
        node, h = self.by_name[name], self.cfg["health"]
        where = ", ".join(sorted(self.fqdns))
        address = node["ipv4"] + (f", {node['ipv6']}" if self.cfg["ipv6"] and node["ipv6"] else "")
        if removed and name in self.drained:
            reason, kind = "DNSRecordDrained", "Normal"
            message = f"{name} ({address}) taken out of {where}: drain requested"
        elif removed:
            reason, kind = "DNSRecordRemoved", "Warning"
            message = (f"{name} ({address}) taken out of {where}: {h['fail_threshold']} consecutive failed health "
                       f"checks of {node['health_url']} ({self.health[name]['last_error']})")
        else:
            reason, kind = "DNSRecordRestored", "Normal"
            message = f"{name} ({address}) put back into {where}: healthy and not drained"
        (LOG.warning if kind == "Warning" else LOG.info)("%s: %s", reason, message)
        self.event(name, reason, message, kind)

    def note(self, key, node, reason, message):
        """A Warning recorded once per episode (not every round)."""
        if key in self.notes:
            return
        self.notes[key] = message
        LOG.warning("%s: %s", reason, message)
        self.event(node, reason, message, "Warning")

    def event(self, node, reason, message, kind):
        ns = self.cfg["kubernetes"]["event_namespace"]
        uid = (self.node_meta.get(node) or {}).get("uid")
        body = guard.event(node, reason, message, kind, ns, self.cfg["identity"], time.time(), uid)
        try:
            self.kube.request("POST", f"/api/v1/namespaces/{ns}/events", body)
        except KubeError as exc:
            LOG.warning("recording the Event failed: %s", exc)

    def acknowledge_drains(self):
        """``honeydue.io/dns-drained`` on a drained Node once DNS no longer holds it (what upgrade and
        reboot hooks wait for); removed again once the drain is lifted."""
        for name in self.by_name:
            annotations = (self.node_meta.get(name) or {}).get("annotations") or {}
            has = guard.DRAINED_ANNOTATION in annotations
            want = name in self.drained and name not in self.published
            if has == want or name not in self.node_meta:
                continue
            value = guard.rfc3339(time.time()) if want else None
            try:
                self.kube.request("PATCH", f"/api/v1/nodes/{name}",
                                  {"metadata": {"annotations": {guard.DRAINED_ANNOTATION: value}}},
                                  "application/merge-patch+json")
                annotations = dict(annotations)
                if want:
                    annotations[guard.DRAINED_ANNOTATION] = value
                else:
                    annotations.pop(guard.DRAINED_ANNOTATION, None)
                self.node_meta[name] = dict(self.node_meta[name], annotations=annotations)
            except KubeError as exc:
                LOG.warning("annotating %s failed: %s", name, exc)


# -- entry point -----------------------------------------------------------------------------------
def main(argv=None):
    parser = argparse.ArgumentParser(prog="honeydue-dns-guard", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", default="/etc/honeydue/dns-guard.yml")
    parser.add_argument("--check-config", metavar="FILE", help="validate FILE and exit")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    journald = bool(os.environ.get("JOURNAL_STREAM"))  # the journal stamps lines itself
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, stream=sys.stdout,
                        format="%(levelname)s %(message)s" if journald else "%(asctime)s %(levelname)s %(message)s")
    if args.check_config:
        try:
            cfg = guard.load_config(read_document(args.check_config))
        except (guard.ConfigError, OSError, ValueError) as exc:
            print(f"{args.check_config}: {exc}", file=sys.stderr)
            return 1
        print(f"{args.check_config}: ok; detection within {guard.detection_seconds(cfg['health']):g} s, "
              f"restore within {guard.restore_seconds(cfg['health']):g} s")
        return 0
    try:
        cfg = guard.load_config(read_document(args.config))
        token = read_secret(cfg["cloudflare"]["token_file"])
        kube = Kube(cfg["kubernetes"])
    except (guard.ConfigError, OSError, ValueError, KeyError, ssl.SSLError) as exc:
        LOG.error("cannot start: %s", exc)
        return 2
    install_ansible_shim()
    import _cloudflare  # pylint: disable=import-outside-toplevel

    cf = cfg["cloudflare"]
    client = _cloudflare.CloudflareClient(token, cf["api_base_url"], timeout=cf["timeout"], max_retries=3,
                                          max_wait=cf["max_wait"])
    del token
    runner = Guard(cfg, kube, client, Checker(cfg["health"], cfg["nodes"]))

    def stop(signum, _frame):
        LOG.info("signal %d: stopping", signum)
        runner.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runner.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
