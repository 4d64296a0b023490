#!/usr/bin/python
# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k3s_quorum_join
short_description: Join, replace or restart a K3s server without ever losing etcd quorum
version_added: 0.3.0
author: honeyDue engineering (@honeydue)
description:
  - Reads K3s's embedded etcd through its JSON gateway (C(https://127.0.0.1:2382), K3s's etcd
    client certificate) on the server it runs on, and decides with one definition of healthy (see
    O(state)) whether a server may join, be replaced or be restarted.
  - "Healthy: every member except the one being replaced answers, all report the same leader, none
    has an alarm, each is within O(max_raft_lag) entries of the leader, and the answering voters are
    a majority. A dead member that this run replaces does not make the cluster unhealthy."
  - "O(state=status) (run on every server, in one task): this server's member status. O(state=prepare)
    (run on one healthy server, the others' statuses passed in): the plan, the cluster lock, and the
    removal of a rebuilt node's stale member while quorum holds; refused with the member table when
    the cluster is not healthy. O(state=wait) (same server): until the node's member is a started
    voter, the cluster healthy again and (O(node_ready)) its Node Ready; then the lock is released."
  - "O(state=remove) (run on a healthy server that stays): removes the members of O(node_name) while the
    voters left keep quorum and the cluster is otherwise healthy, under the cluster lock; refused with the
    member table otherwise."
  - "Serial by construction: O(state=prepare) takes a lock key in etcd (under a lease, so a run that
    dies releases it after O(lock_ttl)), and a second run or another host's join waits for it."
attributes:
  check_mode:
    support: full
    description: O(state=prepare) returns the plan and changes nothing.
  diff_mode:
    support: full
    description: O(state=prepare) and O(state=remove) show the member list before and after (planned, in check mode).
options:
  state:
    description: What to do (see the description).
    type: str
    choices: [status, prepare, wait, release, remove]
    default: status
  node_name:
    description: The K3s node name of the server that joins or restarts (members are C(<node-name>-<8 hex>)).
    type: str
  peer_url:
    description: Its etcd peer URL, C(https://<node-ip>:2380).
    type: str
  member_name:
    description:
      - The etcd member name the node keeps on disk (K3s's C(server/db/etcd/name)); empty when it
        has no etcd data (new or rebuilt). Any other member with its node name or peer URL is then
        stale. When omitted, the member with its node name and peer URL is taken as its own.
    type: str
  statuses:
    description: Every server's O(state=status) result, by host (the module reads only its own gateway).
    type: dict
    default: {}
  lock_owner:
    description:
      - Who holds the cluster lock (for example the play's host and run id). O(state=prepare) takes
        it; O(state=wait) and O(state=release) release it only when this owner still holds it.
    type: str
  lock_ttl:
    description: Seconds the lock outlives a run that dies.
    type: int
    default: 900
  timeout:
    description: Seconds O(state=wait) waits.
    type: int
    default: 300
  max_raft_lag:
    description: Raft entries behind the leader that still count as caught up.
    type: int
    default: 50
  gateway_url:
    description: etcd's JSON gateway on this server.
    type: str
    default: https://127.0.0.1:2382
  node_ready:
    description: O(state=wait) also waits until the node's Node is Ready (read with K3s's admin client certificate).
    type: bool
    default: true
  api_url:
    description: The Kubernetes API of this server.
    type: str
    default: https://127.0.0.1:6443
  data_dir:
    description: K3s's data directory (O(state=status) reports the member name in C(server/db/etcd/name)).
    type: path
    default: /var/lib/rancher/k3s
  tls_dir:
    description: K3s's etcd certificates (C(server-ca.crt), C(client.crt), C(client.key)).
    type: path
    default: /var/lib/rancher/k3s/server/tls/etcd
"""

EXAMPLES = r"""
- name: Each server's etcd status
  honeydue.infra.k3s_quorum_join:
    state: status
  register: k3s_status

- name: Prepare node2's join on a healthy server (stale member removed while quorum holds)
  honeydue.infra.k3s_quorum_join:
    state: prepare
    node_name: node2
    peer_url: https://10.0.1.12:2380
    statuses: "{{ dict(groups.k3s_servers | zip(groups.k3s_servers | map('extract', hostvars, 'k3s_status'))) }}"
    lock_owner: "{{ inventory_hostname }}"
  delegate_to: node1
"""

RETURN = r"""
plan:
  description: The decision (none, join, remove-then-join, remove, refuse) and why.
  returned: state in (prepare, remove)
  type: dict
members_before:
  description:
    - The member list before any change (name, id, peer_url, learner, healthy).
    - With O(state=wait), the first member list the server answered with (it is asked again until O(timeout));
      empty when it never answered.
  returned: state in (prepare, wait)
  type: list
  elements: dict
members_after:
  description: The member list after the change.
  returned: state in (prepare, wait)
  type: list
  elements: dict
membership:
  description: Members added, removed and promoted between the plan and the end of the wait.
  returned: state=wait
  type: dict
removed:
  description: Names of the members removed.
  returned: state in (prepare, remove)
  type: list
  elements: str
status:
  description:
    - This server's member status (member_id, leader, raft_index, alarms, answered) and the etcd member
      name it keeps on disk (member_name, empty without etcd data).
  returned: state=status
  type: dict
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.honeydue.infra.plugins.module_utils._etcd_gateway import Gateway, GatewayError, node_ready
from ansible_collections.honeydue.infra.plugins.module_utils._etcd_quorum import (
    Status, diff, member_table, membership_text, plan_join, plan_remove)

LOCK_KEY = "/honeydue/k3s-server-lock"


def _statuses(raw):
    out = {}
    for value in (raw or {}).values():
        st = (value or {}).get("status") or {}
        if st.get("member_id"):
            out[str(st["member_id"])] = Status(str(st["member_id"]), st.get("leader") if st.get("answered") else None,
                                               st.get("raft_index"), tuple(st.get("alarms", [])))
    return out


def _lock(gw, owner, ttl, module):
    import base64
    lease = gw.call("/v3/lease/grant", {"TTL": str(ttl)})["ID"]
    key, value = base64.b64encode(LOCK_KEY.encode()).decode(), base64.b64encode(owner.encode()).decode()
    deadline = time.time() + ttl
    while True:
        res = gw.call("/v3/kv/txn", {
            "compare": [{"key": key, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            "success": [{"request_put": {"key": key, "value": value, "lease": str(lease)}}],
            "failure": [{"request_range": {"key": key}}]})
        if res.get("succeeded"):
            return
        held = res["responses"][0]["response_range"].get("kvs", [{}])[0].get("value", "")
        if base64.b64decode(held).decode() == owner:
            return
        if time.time() > deadline:
            module.fail_json(msg=f"the cluster lock is held by {base64.b64decode(held).decode()!r}")
        time.sleep(2)


def _release(gw, owner):
    """Delete the lock only while ``owner`` holds it (a transaction on its value)."""
    import base64
    key, value = base64.b64encode(LOCK_KEY.encode()).decode(), base64.b64encode(owner.encode()).decode()
    res = gw.call("/v3/kv/txn", {
        "compare": [{"key": key, "target": "VALUE", "result": "EQUAL", "value": value}],
        "success": [{"request_delete_range": {"key": key}}]})
    return bool(res.get("succeeded"))


def _diff(before, after):
    return {"before": membership_text(before), "after": membership_text(after),
            "before_header": "etcd members", "after_header": "etcd members"}


def _wait(module, gw, statuses):
    """Until this server's member is a started voter, etcd healthy and (node_ready) its Node Ready.

    A server just started (``systemctl start --no-block``) may not answer yet, and its etcd client
    certificates may not exist yet: every read, the first member list included, is retried until the
    timeout. ``members_before`` is the first member list it answered with (empty if it never did)."""
    p = module.params
    deadline = time.time() + p["timeout"]
    members = None
    last = ""
    while time.time() < deadline:
        try:
            now = gw.members()
            if members is None:
                members = now
            mine = [m for m in now if m.name.rsplit("-", 1)[0] == p["node_name"] and p["peer_url"] in m.peer_urls]
            ok, reason = gw.health()
            voter = bool(mine and not mine[0].is_learner and mine[0].client_urls and ok)
            ready, why = (True, "") if not (voter and p["node_ready"]) else node_ready(
                p["node_name"], p["api_url"], os.path.join(p["data_dir"], "server", "tls"))
            if voter and ready:
                if p["lock_owner"]:
                    _release(gw, p["lock_owner"])
                module.exit_json(changed=False, members_before=member_table(members, statuses),
                                 members_after=member_table(now, statuses), membership=diff(members, now))
            last = why or reason or ("learner" if mine and mine[0].is_learner else "not a started member yet")
        except GatewayError as exc:
            last = exc.message
        time.sleep(0.5)
    module.fail_json(msg=f"{p['node_name']} did not become a healthy voter with its Node Ready within {p['timeout']} s: {last}",
                     members_before=member_table(members or [], statuses))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["status", "prepare", "wait", "release", "remove"], default="status"),
            node_name=dict(type="str"), peer_url=dict(type="str"), member_name=dict(type="str"), statuses=dict(type="dict", default={}),
            lock_owner=dict(type="str"), lock_ttl=dict(type="int", default=900), timeout=dict(type="int", default=300),
            max_raft_lag=dict(type="int", default=50), gateway_url=dict(type="str", default="https://127.0.0.1:2382"),
            tls_dir=dict(type="path", default="/var/lib/rancher/k3s/server/tls/etcd"),
            data_dir=dict(type="path", default="/var/lib/rancher/k3s"),
            node_ready=dict(type="bool", default=True), api_url=dict(type="str", default="https://127.0.0.1:6443")),
        required_if=[("state", "prepare", ("node_name", "peer_url", "lock_owner")), ("state", "release", ("lock_owner",)),
                     ("state", "remove", ("node_name", "lock_owner")),
                     ("state", "wait", ("node_name", "peer_url"))],
        supports_check_mode=True)
    p = module.params
    gw = Gateway(p["gateway_url"], p["tls_dir"])
    if p["state"] == "status":
        name_file = os.path.join(p["data_dir"], "server", "db", "etcd", "name")
        member_name = ""
        if os.path.exists(name_file):
            with open(name_file) as fh:
                member_name = fh.read().strip()
        if not member_name:  # no etcd data: nothing to ask
            module.exit_json(changed=False, status={"answered": False, "member_name": "", "error": "no etcd data"})
        try:
            st = gw.status()
            members = gw.members()
        except GatewayError as exc:
            module.exit_json(changed=False, status={"answered": False, "member_name": member_name, "error": exc.message})
        module.exit_json(changed=False, status={"answered": True, "member_id": st.member_id, "leader": st.leader,
                                                "raft_index": st.raft_index, "alarms": list(st.alarms),
                                                "member_name": member_name},
                         members=[m.__dict__ for m in members])
    if p["state"] == "release":
        released = False
        if not module.check_mode and p["lock_owner"]:
            try:
                released = _release(gw, p["lock_owner"])
            except GatewayError as exc:
                module.fail_json(msg=f"releasing the cluster lock failed: {exc.message}")
        module.exit_json(changed=released)
    statuses = _statuses(p["statuses"])
    if p["state"] == "wait":
        _wait(module, gw, statuses)
    try:
        members = gw.members()
    except GatewayError as exc:
        module.fail_json(msg=f"etcd member list failed on this server: {exc.message}")
    before = member_table(members, statuses)
    if p["state"] == "remove":
        plan = plan_remove(members, statuses, p["node_name"])
        result = dict(plan={"action": plan.action, "reason": plan.reason, "remove": [m.name for m in plan.remove]},
                      members_before=before, removed=[])
        if plan.action == "refuse":
            module.fail_json(msg=f"refusing to remove {p['node_name']}: {plan.reason}", **result)
        if plan.action == "none" or module.check_mode:
            module.exit_json(changed=plan.action == "remove", members_after=before,
                             diff=_diff(members, [m for m in members if m not in plan.remove]), **result)
        try:
            _lock(gw, p["lock_owner"], p["lock_ttl"], module)
            for m in plan.remove:
                gw.remove(m.id)
                result["removed"].append(m.name)
        except GatewayError as exc:
            module.fail_json(msg=f"removing {p['node_name']} failed: {exc.message}", **result)
        finally:
            try:
                _release(gw, p["lock_owner"])
            except GatewayError:
                pass
        now = gw.members()
        module.exit_json(changed=True, members_after=member_table(now, statuses), diff=_diff(members, now), **result)
    if p["state"] == "prepare":
        plan = plan_join(members, statuses, p["node_name"], p["peer_url"], p["member_name"])
        result = dict(plan={"action": plan.action, "reason": plan.reason, "remove": [m.name for m in plan.remove]},
                      members_before=before, removed=[])
        if plan.action == "refuse":
            module.fail_json(msg=f"refusing to change {p['node_name']}: {plan.reason}", **result)
        if module.check_mode:
            module.exit_json(changed=plan.action == "remove-then-join", members_after=before,
                             diff=_diff(members, [m for m in members if m not in plan.remove]), **result)
        try:
            _lock(gw, p["lock_owner"], p["lock_ttl"], module)
        except GatewayError as exc:
            module.fail_json(msg=f"taking the cluster lock failed: {exc.message}", **result)
        for m in plan.remove:
            try:
                gw.remove(m.id)
            except GatewayError as exc:
                module.fail_json(msg=f"removing stale member {m.name} failed: {exc.message}", **result)
            result["removed"].append(m.name)
        now = gw.members()
        module.exit_json(changed=bool(result["removed"]), members_after=member_table(now, statuses),
                         diff=_diff(members, now), **result)


if __name__ == "__main__":
    main()
