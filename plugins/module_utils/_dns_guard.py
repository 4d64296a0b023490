# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the DNS guard (``roles/dns_guard``): which nodes the Cloudflare record sets hold.

Private to the collection. No I/O and no imports from the collection: the daemon the role installs
on every K3s server (``roles/dns_guard/files/honeydue_dns_guard.py``) copies this file next to
``_cf_plan.py`` and ``_cloudflare.py`` and runs it with the node's own python3 (stdlib only).

What it decides, each rule unit-tested:

* **Hysteresis** (:func:`observe`): a node in DNS is taken out only after ``fail_threshold``
  consecutive failed health checks, and put back only after ``rise_threshold`` consecutive good
  ones. Any check that agrees with the current state resets the count, so a node alternating
  between good and bad answers never changes state (no flapping of the records).
* **Never fewer than one record** (:func:`select`): the records are the healthy, undrained nodes.
  When no node passes its checks the guard changes nothing (``keep_current``): DNS keeps the last
  set it published. The reasoning: when every check fails at once, the likeliest cause is the
  vantage point (the leader's own network, a firewall change) rather than every origin failing
  together, and if they all did fail, no set of records would help; an empty set would turn a
  partial outage into a total one.
* **Drain** (operator-requested, the Node annotation ``honeydue.io/dns-drain: "true"``, set by
  upgrades and reboots through the Kubernetes API): a drained node leaves DNS at once, whatever
  its health, unless it is the last healthy node; then it stays (``held``) until another node is
  healthy again.
* **Leader election** (:class:`LeaderElector`): the semantics of client-go's ``leaderelection``
  package on a ``coordination.k8s.io/v1`` Lease (holderIdentity, leaseDurationSeconds,
  acquireTime, renewTime, leaseTransitions). A candidate takes the Lease when it is free (no
  holder) or when it has seen the same record, unchanged, for ``leaseDurationSeconds`` on its own
  monotonic clock (never by comparing ``renewTime`` with its wall clock: clocks of two nodes may
  disagree); the holder renews it every retry period and stops acting when it could not renew
  for ``renew_deadline`` seconds. Every write is a PUT carrying the ``resourceVersion`` that was
  read (or a create), so two candidates racing for the same Lease cannot both win: the apiserver
  answers the loser 409 Conflict (optimistic concurrency).
* **Record sets** (:func:`desired_records`): per configured name (apex, ``api``, ``admin``) an A set
  (and with ``ipv6`` an AAAA set) of the selected nodes, in the shape ``_cf_plan.desired_sets``
  takes.
"""
from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timezone

DRAIN_ANNOTATION = "honeydue.io/dns-drain"
DRAINED_ANNOTATION = "honeydue.io/dns-drained"
COMPONENT = "honeydue-dns-guard"
TRUE_VALUES = ("true", "yes", "1", "on")

DEFAULTS = {
    "names": ["@", "api", "admin"],
    "ipv6": False,
    "proxied": True,
    "ttl": 1,
    "comment": "managed by honeydue.infra",
    "health": {"interval": 2.0, "timeout": 1.5, "fail_threshold": 3, "rise_threshold": 3,
               "expect_status": 200, "host_header": ""},
    "cloudflare": {"api_base_url": "https://api.cloudflare.com/client/v4", "token_file": "",
                   "zone_id": "", "max_wait": 10.0, "timeout": 10, "resync_interval": 60.0},
    "kubernetes": {"kubeconfig": "/etc/rancher/k3s/k3s.yaml", "api_url": "", "ca_file": "",
                   "client_cert": "", "client_key": "", "token_file": "", "timeout": 5.0,
                   "lease_namespace": "kube-system", "lease_name": "honeydue-dns-guard",
                   "lease_duration": 15, "renew_deadline": 10.0, "event_namespace": "default",
                   "drain_annotation": DRAIN_ANNOTATION},
}


class ConfigError(ValueError):
    """A configuration the daemon refuses to start with."""


# -- configuration ---------------------------------------------------------------------------------
def _merge(defaults, given, where):
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(given).__name__}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    return {key: given.get(key, value) for key, value in defaults.items()}


def _number(section, key, where, minimum, integer=False):
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise ConfigError(f"{where}.{key}: {value!r} is not {'an integer' if integer else 'a number'}")
    if value < minimum:
        raise ConfigError(f"{where}.{key}: {value} is less than {minimum}")
    return value


def _address(value, version, where):
    try:
        addr = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not an IP address") from None
    if addr.version != version:
        raise ConfigError(f"{where}: {value} is not an IPv{version} address")
    return str(addr)


def load_config(doc):
    """Validate the daemon's configuration (the parsed ``/etc/honeydue/dns-guard.yml``) and fill in
    the defaults. Raises :class:`ConfigError` naming the first thing wrong."""
    if not isinstance(doc, dict):
        raise ConfigError("the configuration must be a mapping")
    top_keys = set(DEFAULTS) | {"node_name", "identity", "zone", "nodes"}
    unknown = sorted(set(doc) - top_keys)
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}")
    cfg = {key: doc.get(key, value) for key, value in DEFAULTS.items() if not isinstance(value, dict)}
    for section in ("health", "cloudflare", "kubernetes"):
        cfg[section] = _merge(DEFAULTS[section], doc.get(section), section)
    for key in ("node_name", "zone"):
        if not isinstance(doc.get(key), str) or not doc[key].strip():
            raise ConfigError(f"{key} is required")
        cfg[key] = doc[key].strip()
    cfg["identity"] = str(doc.get("identity") or "").strip()
    if not isinstance(cfg["names"], list) or not cfg["names"] or not all(isinstance(n, str) and n for n in cfg["names"]):
        raise ConfigError("names: a non-empty list of names (\"@\" is the apex)")
    if len(set(cfg["names"])) != len(cfg["names"]):
        raise ConfigError("names: a name is listed twice")
    ttl = cfg["ttl"]
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not (ttl == 1 or 30 <= ttl <= 86400):
        raise ConfigError(f"ttl: {ttl!r} must be 1 (auto) or 30..86400")
    if cfg["proxied"] and ttl != 1:
        raise ConfigError(f"ttl: {ttl} with proxied records; Cloudflare gives proxied records TTL 1 (auto)")
    health = cfg["health"]
    _number(health, "interval", "health", 0.1)
    _number(health, "timeout", "health", 0.1)
    _number(health, "fail_threshold", "health", 1, integer=True)
    _number(health, "rise_threshold", "health", 1, integer=True)
    _number(health, "expect_status", "health", 100, integer=True)
    if health["timeout"] > health["interval"]:
        raise ConfigError(f"health.timeout ({health['timeout']}) must not exceed health.interval ({health['interval']})")
    kube = cfg["kubernetes"]
    _number(kube, "lease_duration", "kubernetes", 1, integer=True)
    _number(kube, "renew_deadline", "kubernetes", 0.1)
    _number(kube, "timeout", "kubernetes", 0.1)
    if not kube["renew_deadline"] < kube["lease_duration"]:
        raise ConfigError("kubernetes.renew_deadline must be shorter than kubernetes.lease_duration")
    if not health["interval"] < kube["renew_deadline"]:
        raise ConfigError("health.interval (the retry period of the Lease) must be shorter than kubernetes.renew_deadline")
    if not (kube["kubeconfig"] or kube["api_url"]):
        raise ConfigError("kubernetes: kubeconfig or api_url is required")
    cf = cfg["cloudflare"]
    _number(cf, "max_wait", "cloudflare", 0)
    _number(cf, "timeout", "cloudflare", 1)
    _number(cf, "resync_interval", "cloudflare", 1)
    if not cf["token_file"]:
        raise ConfigError("cloudflare.token_file is required (the token never goes in this file)")
    cfg["nodes"] = _nodes(doc.get("nodes"), cfg["ipv6"])
    if not cfg["identity"]:
        cfg["identity"] = cfg["node_name"]
    return cfg


def _nodes(nodes, ipv6):
    if not isinstance(nodes, list) or not nodes:
        raise ConfigError("nodes: a non-empty list of {name, ipv4, health_url}")
    out, seen = [], set()
    for i, node in enumerate(nodes):
        where = f"nodes[{i}]"
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: expected a mapping")
        unknown = sorted(set(node) - {"name", "ipv4", "ipv6", "health_url"})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
        name = str(node.get("name") or "").strip()
        if not name:
            raise ConfigError(f"{where}.name is required")
        if name in seen:
            raise ConfigError(f"{where}: node {name} is listed twice")
        seen.add(name)
        url = str(node.get("health_url") or "")
        if not re.match(r"^https?://[^/\s]+", url):
            raise ConfigError(f"{where}.health_url: {url!r} is not an http(s) URL")
        entry = {"name": name, "ipv4": _address(node.get("ipv4"), 4, f"{where}.ipv4"), "ipv6": None,
                 "health_url": url}
        if node.get("ipv6"):
            entry["ipv6"] = _address(node["ipv6"], 6, f"{where}.ipv6")
        elif ipv6:
            raise ConfigError(f"{where}.ipv6 is required with ipv6: true (every node needs its AAAA address)")
        out.append(entry)
    for family in ("ipv4", "ipv6"):
        values = [n[family] for n in out if n[family]]
        if len(set(values)) != len(values):
            raise ConfigError(f"nodes: two nodes share an {family} address")
    return out


def detection_seconds(health):
    """Worst case from a node that stops answering to its records being removed: the next check
    comes within one interval, then ``fail_threshold - 1`` more intervals, the last one waiting
    for its timeout (an unreachable node does not refuse, it times out)."""
    return health["interval"] * health["fail_threshold"] + health["timeout"]


def restore_seconds(health):
    """Worst case from a node answering again to its records being back."""
    return health["interval"] * health["rise_threshold"]


# -- health with hysteresis ------------------------------------------------------------------------
def new_health(healthy):
    """A node's health record: the state it is in, and how many consecutive checks disagreed."""
    return {"healthy": bool(healthy), "streak": 0, "last_error": ""}


def observe(state, ok, fail_threshold, rise_threshold, error=""):
    """Feed one check result into a node's health record.

    Returns ``(new_state, transition)``; ``transition`` is ``"down"`` or ``"up"`` when the state
    flips on this check, else None. A check agreeing with the current state resets the count.
    """
    state = dict(state)
    if not ok:
        state["last_error"] = error or "health check failed"
    if bool(ok) == state["healthy"]:
        state["streak"] = 0
        return state, None
    state["streak"] += 1
    if state["streak"] >= (rise_threshold if ok else fail_threshold):
        state["healthy"], state["streak"] = bool(ok), 0
        return state, ("up" if ok else "down")
    return state, None


def initial_health(nodes, published_ips):
    """The health records a new leader starts from: a node whose address is in DNS now counts as
    healthy (it must fail ``fail_threshold`` checks to leave), any other as unhealthy (it must pass
    ``rise_threshold`` checks to join). Taking over therefore changes nothing by itself."""
    published = set(published_ips)
    return {n["name"]: new_health(n["ipv4"] in published) for n in nodes}


# -- which nodes DNS holds ------------------------------------------------------------------------
def is_drained(annotations, key=DRAIN_ANNOTATION):
    """Whether a Node's annotations ask for it to be taken out of DNS."""
    return str((annotations or {}).get(key, "")).strip().lower() in TRUE_VALUES


def select(nodes, health, drained, published_names):
    """The nodes the record sets should hold.

    ``nodes`` the configured nodes (in order), ``health`` their records (:func:`observe`),
    ``drained`` the names asked out, ``published_names`` the nodes whose address DNS holds now.

    Returns ``{"serving": [names], "keep_current": bool, "held": {name: reason}}``. With
    ``keep_current`` nothing is to change (no node passes its checks). ``held`` names drained nodes
    kept because no other healthy node would remain.
    """
    names = [n["name"] for n in nodes]
    healthy = [n for n in names if health.get(n, {}).get("healthy")]
    if not healthy:
        return {"serving": [n for n in names if n in set(published_names)], "keep_current": True, "held": {}}
    serving = [n for n in healthy if n not in drained]
    if serving:
        return {"serving": serving, "keep_current": False, "held": {}}
    # Every healthy node is drained: keep those DNS holds now (at least one), never none.
    kept = [n for n in healthy if n in set(published_names)] or healthy[:1]
    reason = "drain requested, but it is the last healthy node: kept until another node is healthy"
    return {"serving": kept, "keep_current": False, "held": {n: reason for n in kept}}


def desired_records(cfg, serving):
    """The record sets for ``_cf_plan.desired_sets``: each configured name, one A set (and with
    ``ipv6`` one AAAA set) of the serving nodes' addresses."""
    by_name = {n["name"]: n for n in cfg["nodes"]}
    chosen = [by_name[name] for name in serving]
    families = [("A", "ipv4")] + ([("AAAA", "ipv6")] if cfg["ipv6"] else [])
    out = []
    for name in cfg["names"]:
        for rtype, family in families:
            out.append({"name": name, "type": rtype, "values": [n[family] for n in chosen if n[family]],
                        "proxied": cfg["proxied"], "ttl": cfg["ttl"], "comment": cfg["comment"]})
    return out


def published_nodes(cfg, records, fqdns):
    """The configured nodes whose IPv4 address is in the A records of any of ``fqdns`` now."""
    ips = {r["content"] for r in records if r.get("type") == "A" and r["name"].lower() in fqdns}
    return [n["name"] for n in cfg["nodes"] if n["ipv4"] in ips]


def changes(before, after):
    """``(removed, restored)``: node names that left and joined the record sets."""
    return [n for n in before if n not in after], [n for n in after if n not in before]


# -- Kubernetes objects ----------------------------------------------------------------------------
def micro_time(when):
    """A ``metav1.MicroTime`` as the apiserver writes it (RFC 3339, microseconds, UTC)."""
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339(when):
    """A ``metav1.Time`` (RFC 3339, seconds, UTC)."""
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def event(node, reason, message, event_type, namespace, instance, when, node_uid=None):
    """A core/v1 Event about a Node, as client-go's event recorder writes one (name
    ``<object>.<hex nanoseconds>``, ``count`` 1, first and last timestamp, source component)."""
    involved = {"apiVersion": "v1", "kind": "Node", "name": node}
    if node_uid:
        involved["uid"] = node_uid
    stamp = rfc3339(when)
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{node}.{int(when * 1e9):x}", "namespace": namespace},
            "involvedObject": involved, "reason": reason, "message": message[:1024], "type": event_type,
            "source": {"component": COMPONENT, "host": instance},
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            "reportingComponent": COMPONENT, "reportingInstance": instance}


class LeaderElector:
    """client-go ``leaderelection`` on a Lease, without the I/O.

    Each round, the caller reads the Lease (None when it does not exist) and calls
    :meth:`attempt` with it; the answer is ``("create", lease)``, ``("update", lease)`` (a PUT of the
    returned object, which carries the ``resourceVersion`` that was read) or ``("wait", reason)``.
    It then reports the write's outcome: :meth:`succeeded` with the apiserver's answer, or
    :meth:`failed` (409 Conflict or any error: another candidate wrote first, or the API is
    unreachable). :meth:`leading` says whether the caller may act now.
    """

    def __init__(self, identity, namespace, name, lease_duration=15, renew_deadline=10.0):
        self.identity = identity
        self.namespace = namespace
        self.name = name
        self.lease_duration = int(lease_duration)
        self.renew_deadline = float(renew_deadline)
        self.observed = None  # the spec last seen (read or written)
        self.observed_rv = None
        self.observed_time = None  # monotonic time it was first seen as it is
        self.renewed_at = None  # monotonic time of our last successful write as holder

    # -- what client-go calls IsLeader / isLeaseValid ------------------------------------------
    def holds(self):
        """Whether the record last observed names this candidate as the holder."""
        return bool(self.observed) and self.observed.get("holderIdentity") == self.identity

    def lease_valid(self, mono):
        if self.observed is None or self.observed_time is None:
            return False
        return self.observed_time + int(self.observed.get("leaseDurationSeconds") or 0) > mono

    def leading(self, mono):
        """Whether this candidate may act: it holds the Lease and renewed it within the deadline."""
        return self.holds() and self.renewed_at is not None and mono - self.renewed_at < self.renew_deadline

    def _observe(self, spec, rv, mono):
        if spec != self.observed or rv != self.observed_rv:
            self.observed, self.observed_rv, self.observed_time = dict(spec), rv, mono

    def _spec(self, now, acquire_time, transitions, duration=None):
        return {"holderIdentity": self.identity, "leaseDurationSeconds": duration or self.lease_duration,
                "acquireTime": acquire_time, "renewTime": micro_time(now), "leaseTransitions": transitions}

    def attempt(self, lease, now, mono):
        """One round of ``tryAcquireOrRenew``. ``now`` wall-clock seconds (for the times written),
        ``mono`` monotonic seconds (for expiry)."""
        if lease is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": self._spec(now, micro_time(now), 0)}
            return "create", body
        spec = dict(lease.get("spec") or {})
        self._observe(spec, (lease.get("metadata") or {}).get("resourceVersion"), mono)
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity and self.lease_valid(mono):
            return "wait", f"held by {holder}"
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:  # renew: keep when it was acquired and the count
            new_spec = self._spec(now, spec.get("acquireTime") or micro_time(now), transitions)
        else:  # free, or expired: take it over
            new_spec = self._spec(now, micro_time(now), transitions + 1)
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": dict(lease.get("metadata") or {}), "spec": new_spec}
        return "update", body

    def succeeded(self, answer, mono):
        """The apiserver accepted our create or update (``answer`` is the stored Lease)."""
        spec = dict(answer.get("spec") or {})
        self._observe(spec, (answer.get("metadata") or {}).get("resourceVersion"), mono)
        if spec.get("holderIdentity") == self.identity:
            self.renewed_at = mono

    def failed(self):
        """The write was refused or unanswered. Nothing changes: :meth:`leading` runs out by
        itself once ``renew_deadline`` has passed since the last renewal."""

    def release(self, lease, now):
        """The update that gives the Lease up (client-go ``ReleaseOnCancel``): no holder, a one
        second duration, so any candidate may take it at once. None when we do not hold it."""
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return None
        spec = {"holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": micro_time(now),
                "renewTime": micro_time(now),
                "leaseTransitions": int((lease.get("spec") or {}).get("leaseTransitions") or 0)}
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": dict(lease.get("metadata") or {}), "spec": spec}

    def released(self):
        self.renewed_at = None
        self.observed = None
        self.observed_rv = None
        self.observed_time = None
