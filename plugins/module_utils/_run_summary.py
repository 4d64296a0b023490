# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run summary an operator reads at the end of site.yml, deploy.yml, upgrade.yml and
rotate-secrets.yml (playbooks/summary.yml): pure functions from what the summary read (registered
task results, as the tasks return them) to the lines it prints.

Every part is optional and never raises: a part whose read failed, was skipped or was not asked
for says so in one line (``DNS: not read (no Cloudflare token)``). Problems are written in capitals
(``NOT Ready``, ``LEARNER``, ``MISSING``, ``SHORT``, ``MIXED``) so they stand out at a glance.

Inputs (each a registered result; a failed, skipped or unreachable one is reported as not read):

* ``nodes``: ``kubernetes.core.k8s_info`` of kind Node;
* ``traefik``: ``k8s_info`` of the Traefik pods (kube-system, ``app.kubernetes.io/name=traefik``);
* ``deployments``, ``statefulsets``: ``k8s_info`` of the app's namespace; ``app_pods``: its pods;
  ``release``: the ``honeydue-release`` ConfigMap;
* ``etcd``: ``{server: honeydue.infra.k3s_quorum_join state=status result}`` for every server of
  ``servers`` that was read (a server missing from it was not read);
* ``dns``: ``honeydue.infra.cf_dns_roundrobin`` run in check mode with diff (its ``diff.before`` is
  what Cloudflare has now), ``dns_expected``: ``{host: public address}`` as the inventory says;
* ``why_not``: ``{part: reason}`` for a part deliberately not read (``etcd``, ``dns``, ``kube``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._etcd_quorum import Member, Status, health, quorum
from ._rollout import _tag as image_tag
from ._rollout import rollout_status

APP_WORKLOADS = ("api", "admin", "worker")
NOT_IN_RUN = "not in this play: failed or unreachable earlier, or outside --limit"
MAX_REASON = 160


# -- reading registered results ----------------------------------------------------------------

def _map(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> list:
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return list(value)
    return []


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def one_line(text: Any, limit: int = MAX_REASON) -> str:
    """The first line of ``text``, shortened to ``limit`` characters."""
    line = str(text or "").strip().splitlines()[0] if str(text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


def read_error(result: Any, key: str = "resources") -> str | None:
    """Why a registered result holds nothing to show (None: it holds ``key``)."""
    if result is None or (isinstance(result, Mapping) and not result):
        return "not read"
    if key == "resources" and isinstance(result, Sequence) and not isinstance(result, (str, bytes)):
        return None  # a plain list of objects (a lookup's answer)
    if not isinstance(result, Mapping):
        return f"unexpected result ({type(result).__name__})"
    if result.get("skipped"):
        return one_line(result.get("skip_reason") or "skipped") or "skipped"
    msg = str(result.get("msg") or result.get("error") or "").removeprefix("Task failed: ")
    if result.get("unreachable"):
        return "unreachable: " + one_line(msg.rsplit("reached over ssh: ", 1)[-1] or "no answer", 120)
    if key in result and not result.get("failed"):
        return None
    return one_line(msg or "no answer") or "failed"


def not_read(part: str, why: str) -> str:
    return f"{part}: not read" + (f" ({why})" if why and why != "not read" else "")


def _resources(result: Any) -> list[Mapping]:
    """The objects of a k8s_info result, or of a plain list (the kubernetes.core.k8s lookup's answer)."""
    found = _get(result, "resources") if isinstance(result, Mapping) else result
    return [r for r in _seq(found) if isinstance(r, Mapping)]


def _condition(obj: Mapping, kind: str) -> Mapping:
    for cond in _seq(_get(obj, "status", "conditions")):
        if isinstance(cond, Mapping) and cond.get("type") == kind:
            return cond
    return {}


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    """Rows as left-aligned columns (the last column is not padded)."""
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows if len(r) > i) for i in range(max(len(r) for r in rows))]
    return [indent + "  ".join(c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)).rstrip()
            for r in rows]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# -- Nodes -----------------------------------------------------------------------------------

def node_rows(nodes: Any) -> list[dict[str, Any]]:
    """One row per Node: name, internal and external IPs, kubelet version, Ready (True/False/Unknown),
    its reason, and whether it is cordoned."""
    rows = []
    for node in _resources(nodes):
        addrs = {}
        for a in _seq(_get(node, "status", "addresses")):
            if isinstance(a, Mapping) and a.get("type") in ("InternalIP", "ExternalIP"):
                addrs.setdefault(a["type"], a.get("address") or "")
        ready = _condition(node, "Ready")
        rows.append({"name": str(_get(node, "metadata", "name") or "?"),
                     "internal_ip": addrs.get("InternalIP", ""), "external_ip": addrs.get("ExternalIP", ""),
                     "version": str(_get(node, "status", "nodeInfo", "kubeletVersion") or "?"),
                     "ready": str(ready.get("status") or "Unknown"), "reason": str(ready.get("reason") or ""),
                     "cordoned": bool(_get(node, "spec", "unschedulable"))})
    return sorted(rows, key=lambda r: r["name"])


def nodes_lines(nodes: Any, public: Any = None) -> list[str]:
    """A headline (how many, how many NOT Ready, the K3s versions) and a row per Node. ``public`` maps
    node names to the public address the inventory gives them, shown when the Node has no ExternalIP."""
    public = {str(k): str(v) for k, v in _map(public).items() if v}
    why = read_error(nodes)
    if why:
        return [not_read("Nodes", why)]
    rows = node_rows(nodes)
    if not rows:
        return ["Nodes: NONE registered"]
    bad = [r["name"] for r in rows if r["ready"] != "True"]
    versions = sorted({r["version"] for r in rows})
    head = f"Nodes: {len(rows)}, " + (f"{len(bad)} NOT Ready ({', '.join(bad)})" if bad else "all Ready")
    head += ", K3s " + (versions[0] if len(versions) == 1 else "MIXED versions " + " / ".join(versions))
    table = []
    for r in rows:
        address = r["internal_ip"] or "-"
        external = r["external_ip"] or public.get(r["name"], "")
        if external and external != r["internal_ip"]:
            address += f" / {external}"
        state = "Ready" if r["ready"] == "True" else f"NOT Ready ({r['ready']}{', ' + r['reason'] if r['reason'] else ''})"
        if r["cordoned"]:
            state += ", cordoned"
        table.append([r["name"], address, r["version"], state])
    return [head] + _table(table)


# -- etcd ------------------------------------------------------------------------------------

def _members(raw: Any) -> list[Member]:
    out = []
    for m in _seq(raw):
        if isinstance(m, Mapping):
            out.append(Member(id=str(m.get("id", "")), name=str(m.get("name") or ""),
                              peer_urls=tuple(_seq(m.get("peer_urls"))), client_urls=tuple(_seq(m.get("client_urls"))),
                              is_learner=bool(m.get("is_learner"))))
    return out


def etcd_lines(etcd: Any, servers: Any = None) -> list[str]:
    """The member list (from the first server that answered), each voter or LEARNER and healthy or
    not, with the quorum; servers that were not read, or did not answer, are named."""
    reads = _map(etcd)
    servers = [str(s) for s in _seq(servers)] or sorted(str(h) for h in reads)
    if not servers:
        return [not_read("etcd", "no hosts in k3s_servers")]
    statuses: dict[str, Status] = {}  # member id -> status, of the servers that answered
    on_disk: dict[str, str] = {}  # member name (server/db/etcd/name) -> server
    unread: dict[str, str] = {}  # server -> why there is no status from it
    silent: dict[str, str] = {}  # server -> why its member did not answer
    members: list[Member] | None = None
    for host in servers:
        res = reads.get(host)
        why = NOT_IN_RUN if res is None else read_error(res, "status")
        if why:
            unread[host] = why
            continue
        st = _map(_get(res, "status"))
        if st.get("member_name"):
            on_disk[str(st["member_name"])] = host
        if not st.get("answered"):
            silent[host] = one_line(st.get("error") or "not answering")
            continue
        statuses[str(st.get("member_id"))] = Status(str(st.get("member_id")), str(st.get("leader") or "") or None,
                                                    st.get("raft_index"), tuple(_seq(st.get("alarms"))))
        if members is None and _seq(_get(res, "members")):
            members = _members(_get(res, "members"))
    if members is None:
        if not unread and all(why == "no etcd data" for why in silent.values()):
            return [not_read("etcd", "no server has etcd data yet")]
        detail = "; ".join(f"{h}: {unread.get(h) or silent.get(h)}" for h in servers)
        return [not_read("etcd", f"no server answered: {detail}")]
    members = sorted(members, key=lambda m: (m.name or "~", m.id))
    rows, not_read_names = [], []
    for m in members:
        st = statuses.get(m.id)
        owner = m.name.rsplit("-", 1)[0] if m.name else ""
        host = on_disk.get(m.name) or (owner if owner in servers else None)
        if st is not None:
            state = "ALARM " + ", ".join(st.alarms) if st.alarms else "healthy"
        elif host is not None and host in silent:
            state = f"NOT answering ({silent[host]})"
        elif host is not None and host in unread:
            state = f"health not read ({unread[host]})"
        elif host is not None:
            state = "NOT answering"
        elif not m.name:
            state = "NOT started"
        else:
            state = "health not read (not a host of k3s_servers)"
        if state.startswith("health not read"):
            not_read_names.append(m.name)
        if any(s.leader == m.id for s in statuses.values()):
            state += " (leader)"
        name = m.name or f"(unstarted) {m.peer_urls[0] if m.peer_urls else m.id}"
        rows.append([name, "LEARNER" if m.is_learner else "voter", state])
    voters = [m for m in members if not m.is_learner]
    learners = len(members) - len(voters)
    head = f"etcd: {_plural(len(members), 'member')}, {_plural(len(voters), 'voter')} (quorum {quorum(len(voters))})"
    if learners:
        head += f", {learners} LEARNER" + ("S" if learners > 1 else "")
    # health() counts a member without a status as not answering: true for the servers read, unknown
    # for the others (--limit, unreachable), which are named as not read instead.
    problems = [p for p in health(members, statuses).problems
                if p.split(":", 1)[0] not in not_read_names and not (not_read_names and "quorum needs" in p)]
    if problems:
        head += "; NOT healthy: " + "; ".join(problems)
    elif not_read_names:
        head += f"; health of {', '.join(not_read_names)} not read"
    else:
        head += "; healthy"
    lines = [head] + _table(rows)
    names = {m.name for m in members}
    for host in servers:
        if host in on_disk.values() or any(m.name.rsplit("-", 1)[0] == host for m in members if m.name):
            continue
        lines.append(f"  {host}: " + (f"not read ({unread[host]})" if host in unread else "NO etcd member (no etcd data)"))
    for name, host in sorted(on_disk.items()):
        if name not in names:
            lines.append(f"  {host}: its member {name} is NOT in the member list")
    return lines


# -- Traefik ---------------------------------------------------------------------------------

def _pod_live(pod: Mapping) -> bool:
    return not _get(pod, "metadata", "deletionTimestamp") and _get(pod, "status", "phase") not in ("Succeeded", "Failed")


def _pod_problem(pod: Mapping) -> str:
    """Why a pod is not ready: a container's waiting reason, else its phase."""
    for cs in _seq(_get(pod, "status", "containerStatuses")):
        reason = _get(cs, "state", "waiting", "reason") or _get(cs, "state", "terminated", "reason")
        if reason:
            return str(reason)
    return str(_get(pod, "status", "phase") or "Pending")


def pod_ready(pod: Mapping) -> bool:
    return _condition(pod, "Ready").get("status") == "True"


def traefik_lines(traefik: Any, nodes: Any) -> list[str]:
    """Traefik's pods per Node: ready, NOT ready (why), or MISSING."""
    why = read_error(traefik)
    if why:
        return [not_read("Traefik", why)]
    pods = [p for p in _resources(traefik) if _pod_live(p)]
    names = [r["name"] for r in node_rows(nodes)] if not read_error(nodes) else []
    per_node: dict[str, list[Mapping]] = {}
    unscheduled = 0
    for pod in pods:
        node = _get(pod, "spec", "nodeName")
        if node:
            per_node.setdefault(str(node), []).append(pod)
        else:
            unscheduled += 1
    names += sorted(n for n in per_node if n not in names)
    cells, missing, not_ready = [], [], []
    for n in names:
        on = per_node.get(n, [])
        ready = [p for p in on if pod_ready(p)]
        if not on:
            cells.append(f"{n} MISSING")
            missing.append(n)
        elif ready:
            cells.append(f"{n} ready" + (f" ({len(ready)} pods)" if len(on) > 1 else ""))
        else:
            cells.append(f"{n} NOT ready ({_pod_problem(on[0])})")
            not_ready.append(n)
    ok = len(names) - len(missing) - len(not_ready)
    head = f"Traefik: a ready pod on {ok} of {_plural(len(names), 'node')}"
    if missing:
        head += f"; MISSING on {', '.join(missing)}"
    if not_ready:
        head += f"; NOT ready on {', '.join(not_ready)}"
    if unscheduled:
        head += f"; {_plural(unscheduled, 'pod')} not scheduled"
    if not names and not pods:
        return ["Traefik: NO pods (kube-system, app.kubernetes.io/name=traefik)"]
    return [head, "  " + ", ".join(cells)] if cells else [head]


# -- DNS -------------------------------------------------------------------------------------

def dns_lines(dns: Any, expected: Any = None, zone: str = "") -> list[str]:
    """Each name's records against the hosts it should point at: a set SHORT of a host, an address
    of no host, or a name with NO records is shown."""
    res = _map(dns)
    why = read_error(dns, "diff")
    before = _get(res, "diff", "before")
    if why or not isinstance(before, Mapping):
        return [not_read("DNS", why or "no record list in the answer")]
    want = {str(h): str(a) for h, a in _map(expected).items() if a}
    host_of = {a: h for h, a in want.items()}
    rows, short_names = [], []
    for name in sorted(before, key=lambda n: (n.count("."), n)):
        have = [str(v) for v in _seq(before[name])]
        missing = [h for h, a in sorted(want.items()) if a not in have]
        extra = sorted(a for a in have if a not in host_of)
        if not have:
            state = "NO records"
        else:
            state = ", ".join(host_of.get(a, a) for a in sorted(have, key=lambda a: host_of.get(a, "~" + a)))
        if missing and have:
            state += "; SHORT of " + ", ".join(f"{h} ({want[h]})" for h in missing)
        if extra:
            state += "; NOT a node: " + ", ".join(extra)
        if missing or extra or not have:
            short_names.append(name)
        rows.append([name, state])
    head = f"DNS{' (' + zone + ')' if zone else ''}: "
    if not rows:
        head += "no names read"
    elif short_names:
        head += f"{len(short_names)} of {_plural(len(rows), 'name')} NOT at all {_plural(len(want), 'node')}"
    else:
        head += f"{_plural(len(rows), 'name')}, each at all {_plural(len(want), 'node')}"
    return [head] + _table(rows)


# -- the app ---------------------------------------------------------------------------------

def _workload_of(pod: Mapping) -> str:
    """The workload a pod belongs to: its app.kubernetes.io/component label, else its owner."""
    component = _get(pod, "metadata", "labels", "app.kubernetes.io/component")
    if component:
        return str(component)
    for ref in _seq(_get(pod, "metadata", "ownerReferences")):
        if _get(ref, "kind") == "ReplicaSet" and _get(ref, "name"):
            return str(ref["name"]).rsplit("-", 1)[0]
        if _get(ref, "name"):
            return str(ref["name"])
    return ""


def app_lines(deployments: Any, statefulsets: Any, pods: Any = None, release: Any = None,
              namespace: str = "honeydue", app_workloads: Any = APP_WORKLOADS) -> list[str]:
    """Each workload's image tag and ready/desired; the app's workloads at MIXED tags (between
    workloads, against the recorded release, or between one workload's pods) are shown as such."""
    for part in (deployments, statefulsets):
        why = read_error(part)
        if why:
            return [not_read("App", why)]
    app_names = [str(n) for n in _seq(app_workloads)]
    order = {n: i for i, n in enumerate(app_names)}

    def _name(obj: Mapping) -> str:
        return str(_get(obj, "metadata", "name") or "")

    workloads = sorted(_resources(deployments) + _resources(statefulsets),
                       key=lambda o: (order.get(_name(o), len(order)), _name(o)))
    cm = _resources(release)
    recorded = _map(_get(cm[0], "data")) if cm else {}
    if not workloads:
        return [f"App (namespace {namespace}): nothing deployed"]
    pod_tags: dict[str, dict[str, int]] = {}
    if not read_error(pods):
        for pod in _resources(pods):
            if not _pod_live(pod):
                continue
            images = [c.get("image") for c in _seq(_get(pod, "spec", "containers")) if isinstance(c, Mapping)]
            if images:
                tags = pod_tags.setdefault(_workload_of(pod), {})
                tags[image_tag(images[0])] = tags.get(image_tag(images[0]), 0) + 1
    rows, app_tags, problems = [], {}, []
    for obj in workloads:
        try:
            st = rollout_status(dict(obj))
        except ValueError:
            continue
        tag = image_tag(st["images"][0] if st["images"] else None)
        name = st["name"]
        if name in order:
            app_tags[name] = tag
        state = f"{st['ready']}/{st['desired']} ready"
        if st["ready"] < st["desired"]:
            state = f"{st['ready']}/{st['desired']} ready, NOT all ready"
            problems.append(f"{name} {st['ready']}/{st['desired']}")
        if not st["done"] and st["message"] != "not found":
            state += f" ({st['message'].rstrip('.')})"
        seen = pod_tags.get(name, {})
        if len(seen) > 1 or (seen and tag not in seen):
            state += "; pods MIXED: " + ", ".join(f"{t} x{n}" for t, n in sorted(seen.items()))
            if name in order:
                problems.append(f"{name} pods at {len(seen)} tags")
        rows.append([f"{st['kind']}/{name}", tag, state])
    head = f"App (namespace {namespace}): "
    sha = str(recorded.get("sha") or "")
    distinct = sorted(set(app_tags.values()))
    if len(distinct) > 1:
        head += "MIXED tags: " + ", ".join(f"{n} {t}" for n, t in app_tags.items())
    elif distinct:
        head += f"{', '.join(app_tags)} at {distinct[0]}"
    else:
        head += "none of " + ", ".join(app_names) + " deployed"
    if sha:
        head += f"; release {sha}" + (f" (previous {recorded['previous']})" if recorded.get("previous") else "")
        if distinct and distinct != [sha]:
            head += " - NOT what runs"
    if problems:
        head += "; " + "; ".join(problems)
    return [head] + _table(rows)


# -- the whole summary -------------------------------------------------------------------------

SECTIONS = ("nodes", "etcd", "traefik", "dns", "app")
KUBE_PARTS = ("nodes", "traefik", "app")
TITLES = {"nodes": "Nodes", "etcd": "etcd", "traefik": "Traefik", "dns": "DNS", "app": "App"}


def summary_lines(reads: Any) -> list[str]:
    """The whole summary: one block per part (Nodes, etcd, Traefik, DNS, App), each never raising."""
    reads = _map(reads)
    why_not = {str(k): str(v) for k, v in _map(reads.get("why_not")).items() if v}
    kube_why = why_not.get("kube")
    builders = {
        "nodes": lambda: nodes_lines(reads.get("nodes"), reads.get("public")),
        "etcd": lambda: etcd_lines(reads.get("etcd"), reads.get("servers")),
        "traefik": lambda: traefik_lines(reads.get("traefik"), reads.get("nodes")),
        "dns": lambda: dns_lines(reads.get("dns"), reads.get("dns_expected"), str(reads.get("zone") or "")),
        "app": lambda: app_lines(reads.get("deployments"), reads.get("statefulsets"), reads.get("app_pods"),
                                 reads.get("release"), str(reads.get("namespace") or "honeydue"),
                                 _seq(reads.get("app_workloads")) or APP_WORKLOADS),
    }
    if not kube_why and reads.get("nodes") is not None and read_error(reads.get("nodes")):
        kube_why = read_error(reads.get("nodes"))  # the API did not answer: one line for its three parts
    lines = []
    for part in SECTIONS:
        if part in KUBE_PARTS and kube_why:
            if part == KUBE_PARTS[0]:
                lines.append(not_read("Nodes, Traefik, App (Kubernetes API)", kube_why))
            continue
        if why_not.get(part):
            lines.append(not_read(TITLES[part], why_not[part]))
            continue
        try:
            lines.extend(builders[part]())
        except Exception as exc:  # noqa: BLE001 - a summary must never fail the run
            lines.append(not_read(TITLES[part], f"summary error: {one_line(repr(exc), 120)}"))
    return lines
