"""playbooks/provision.yml (role hcloud_provision, module hcloud_fleet) and inventories/production/hcloud.yml
against the Hetzner Cloud stand-in. Traffic goes to loopback only: the SSH wait is switched off,
as the stand-in's server addresses are documentation-range IPs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import hcloud
import pytest
import yaml
from hcloud.images import Image
from hcloud.networks import NetworkSubnet
from hcloud.server_types import ServerType

from lab.standins.hcloud import HcloudStandIn
from tests.conftest import TOKEN

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROVISION = str(REPO / "playbooks" / "provision.yml")
PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGz5p4ShwQh3Jc3m6Ot6gYb7mv5l+3Ww0T5fJ9j1k4bF ops@lab"
FLEET_TASK = "honeydue.infra.hcloud_provision : Servers (created concurrently; drift reported, never recreated)"
FIREWALL_TASK = "Cloud firewall rules (exactly these)"
ADMIN = ["198.51.100.0/24"]


def _vars(tmp_path: Path, **extra) -> list[str]:
    data = {"hcloud_provision_wait_for_ssh": False, "hcloud_provision_poll_interval": 0.05,
            "hcloud_provision_ssh_keys": [{"name": "ops", "public_key": PUBKEY}],
            "hcloud_provision_admin_cidrs": ADMIN, **extra}
    path = tmp_path / f"vars-{len(list(tmp_path.glob('vars-*')))}.yml"
    path.write_text(yaml.safe_dump(data))
    return ["-e", f"@{path}"]


def _env(api: HcloudStandIn, token: str = TOKEN) -> dict[str, str]:
    return {"HCLOUD_TOKEN": token, "HCLOUD_ENDPOINT": api.url + "/v1"}


def _writes(api: HcloudStandIn) -> list[str]:
    return [s for s in api.sequence() if not s.startswith("GET ")]


def _rules(api: HcloudStandIn) -> list[tuple]:
    (fw,) = api.firewalls.values()
    return [(r["protocol"], r["port"], tuple(r["source_ips"])) for r in fw["rules"]]


@pytest.mark.slow
def test_provision_fresh_idempotent_scale_out_and_refused_scale_in(hcloud_api, playbook, tmp_path) -> None:
    hcloud_api.action_delay = 0.3
    first = playbook(PROVISION, env=_env(hcloud_api), extra_args=_vars(tmp_path))
    assert first.rc == 0, first.stdout[-4000:] + first.stderr[-2000:]

    # The call sequence: catalog checks first, then key, group, private network and subnet, firewall
    # (applied by label), the Primary IPs, then every server create posted back to back before any wait (attached to
    # the network), then protection. The firewall is written once: its rules do not depend on the servers.
    writes = _writes(hcloud_api)
    creates = [i for i, w in enumerate(writes) if w == "POST /v1/servers"]
    net_id, fw_id = next(iter(hcloud_api.networks)), next(iter(hcloud_api.firewalls))
    assert writes[:6] == ["POST /v1/ssh_keys", "POST /v1/placement_groups", "POST /v1/networks",
                          f"POST /v1/networks/{net_id}/actions/add_subnet", "POST /v1/firewalls",
                          f"POST /v1/firewalls/{fw_id}/actions/apply_to_resources"]
    # then each server's Primary IP (created, delete protection on), before the first server
    pip_ids = sorted(p["id"] for p in hcloud_api.primary_ips.values() if p["name"].endswith("-ipv4"))
    assert writes[6:12] == [w for pid in pip_ids for w in (
        "POST /v1/primary_ips", f"POST /v1/primary_ips/{pid}/actions/change_protection")], writes
    assert creates == [12, 13, 14], writes
    assert [w.rsplit("/", 1)[1] for w in writes[15:]] == ["change_protection"] * 3
    seq = hcloud_api.sequence()
    assert seq.index("GET /v1/server_types") < seq.index("POST /v1/ssh_keys")
    # all three creates posted before the first poll of an action
    assert seq.index("GET /v1/actions") > max(i for i, s in enumerate(seq) if s == "POST /v1/servers")

    servers = sorted(hcloud_api.servers.values(), key=lambda s: s["name"])
    assert [s["name"] for s in servers] == ["hetzner1", "hetzner2", "hetzner3"]
    for s in servers:
        assert s["labels"] == {"cluster": "honeydue", "role": "k3s-server", "env": "production"}
        assert (s["server_type"]["name"], s["image"]["name"], s["location"]["name"]) == ("cx33", "ubuntu-24.04", "nbg1")
        assert s["protection"] == {"delete": True, "rebuild": True} and s["status"] == "running"
    (group,) = hcloud_api.placement_groups.values()
    assert group["type"] == "spread" and sorted(group["servers"]) == sorted(s["id"] for s in servers)
    body = hcloud_api.calls("POST", r"^/v1/servers$")[0].body
    assert "ssh_authorized_keys:" in body["user_data"] and PUBKEY in body["user_data"]
    assert "NOPASSWD:ALL" in body["user_data"] and "name: deploy" in body["user_data"]

    # Firewall: exactly ssh and the Kubernetes API from the admins, 80/443 from Cloudflare, icmp.
    # No cluster port at all: cluster traffic is on the private network, which it does not filter.
    from ansible_collections.honeydue.infra.plugins.lookup.cloudflare_ip_ranges import CLOUDFLARE_IPV4, CLOUDFLARE_IPV6
    cloudflare = set(CLOUDFLARE_IPV4 + CLOUDFLARE_IPV6)
    rules = _rules(hcloud_api)
    assert [(p, port) for p, port, _ in rules] == [
        ("tcp", "22"), ("tcp", "6443"), ("tcp", "80"), ("tcp", "443"), ("icmp", None)]
    assert rules[0][2] == rules[1][2] == tuple(ADMIN)
    assert set(rules[2][2]) == set(rules[3][2]) == cloudflare
    assert rules[4][2] == ("0.0.0.0/0", "::/0")
    # Every server is on the private network, in the cluster's subnet.
    (net,) = hcloud_api.networks.values()
    assert net["subnets"][0]["ip_range"] == "10.0.1.0/24"
    assert all(s["private_net"] and s["private_net"][0]["ip"].startswith("10.0.1.") for s in servers)
    (fw,) = hcloud_api.firewalls.values()
    assert fw["applied_to"] == [{"type": "label_selector", "label_selector": {"selector": "cluster=honeydue"}}]
    assert all(hcloud_api.server_json(s)["public_net"]["firewalls"] for s in servers)

    # Re-run: nothing changes, nothing is written.
    before = len(_writes(hcloud_api))
    second = playbook(PROVISION, env=_env(hcloud_api), extra_args=_vars(tmp_path))
    assert second.rc == 0, second.stdout[-4000:]
    assert second.changed() == 0 and len(_writes(hcloud_api)) == before

    # Scale out 3 -> 4: one create (an agent), peers rule widened; nothing recreated.
    ids = {s["name"]: s["id"] for s in servers}
    third = playbook(PROVISION, env=_env(hcloud_api), extra_args=_vars(tmp_path, hcloud_provision_server_count=4))
    assert third.rc == 0, third.stdout[-4000:]
    fleet = third.task_results(FLEET_TASK)
    assert fleet["created"] == ["hetzner4"] and fleet["deleted"] == []
    assert {s["name"]: s["id"] for s in hcloud_api.servers.values() if s["name"] != "hetzner4"} == ids
    new = next(s for s in hcloud_api.servers.values() if s["name"] == "hetzner4")
    assert new["labels"]["role"] == "k3s-agent" and new["private_net"]
    assert len(_rules(hcloud_api)) == 5  # the firewall does not change with the fleet

    # Scale in 4 -> 3 without allow_delete: refused before any change, nothing deleted.
    before = len(_writes(hcloud_api))
    fourth = playbook(PROVISION, env=_env(hcloud_api), extra_args=_vars(tmp_path, hcloud_provision_server_count=3))
    assert fourth.rc != 0
    refused = fourth.task_results(FLEET_TASK)
    assert refused["failure"]["code"] == "scale_in_refused" and "hetzner4" in refused["msg"]
    assert len(hcloud_api.servers) == 4 and len(_writes(hcloud_api)) == before


@pytest.mark.slow
def test_check_mode_creates_nothing_and_shows_the_servers(hcloud_api, playbook, tmp_path) -> None:
    run = playbook(PROVISION, env=_env(hcloud_api), extra_args=_vars(tmp_path) + ["--check", "--diff"])
    assert run.rc == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert _writes(hcloud_api) == []
    fleet = run.task_results(FLEET_TASK)
    assert fleet["changed"] is True and fleet["created"] == ["hetzner1", "hetzner2", "hetzner3"]
    assert sorted(fleet["diff"]["after"]) == ["hetzner1", "hetzner2", "hetzner3"] and fleet["diff"]["before"] == {}


def test_wrong_token_fails_at_the_first_call_with_the_api_code(hcloud_api, playbook, tmp_path) -> None:
    run = playbook(PROVISION, env=_env(hcloud_api, token="wrong-token"), extra_args=_vars(tmp_path))
    assert run.rc != 0
    failed = [t for p in run.result["plays"] for t in p["tasks"] if t["hosts"]["localhost"].get("failed")]
    assert len(failed) == 1
    assert failed[0]["hosts"]["localhost"]["failure"]["code"] == "unauthorized"
    assert [(c.method, c.status) for c in hcloud_api.calls()] == [("GET", 401)]
    assert "wrong-token" not in run.stdout


def test_unknown_server_type_fails_before_any_change(hcloud_api, playbook, tmp_path) -> None:
    run = playbook(PROVISION, env=_env(hcloud_api), extra_args=_vars(tmp_path, hcloud_provision_server_type="cx99"))
    assert run.rc != 0
    assert _writes(hcloud_api) == []
    assert "server type cx99" in run.stdout


def test_fleet_reports_quota_failure_with_the_api_code(hcloud_api, playbook) -> None:
    """Quota exhausted on the second create: the first server is still waited for; code and message surface."""
    from lab.standins._server import Response
    quota = Response(403, {"error": {"code": "resource_limit_exceeded", "message": "server limit exceeded",
                                     "details": {}}})
    task = {"name": "fleet", "honeydue.infra.hcloud_fleet": {
        "servers": [{"name": "hetzner1"}, {"name": "hetzner2"}], "selector_labels": {"cluster": "t"},
        "poll_interval": 0.05}, "ignore_errors": True}
    plays = [{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]
    # the second POST /v1/servers answers 403 resource_limit_exceeded
    calls = {"n": 0}
    original = hcloud_api.handle

    def handle(req):
        if req.method == "POST" and req.path == "/v1/servers":
            calls["n"] += 1
            if calls["n"] == 2:
                hcloud_api._record(req, 403, fault=True)
                return quota
        return original(req)
    hcloud_api.handle = handle
    run = playbook(plays, env=_env(hcloud_api))
    result = run.task_results("fleet")
    assert result["failed"] and result["failure"]["code"] == "resource_limit_exceeded"
    assert result["created"] == ["hetzner1"] and [s["name"] for s in hcloud_api.servers.values()] == ["hetzner1"]
    assert next(iter(hcloud_api.servers.values()))["status"] == "running"


def _inventory(tmp_path: Path, api: HcloudStandIn, *, cache_dir: Path | None = None, network: bool = True) -> dict:
    source_dir = tmp_path / "inv"
    source_dir.mkdir(exist_ok=True)
    config = yaml.safe_load((REPO / "inventories" / "production" / "hcloud.yml").read_text())
    config["api_endpoint"] = api.url + "/v1"
    if not network:
        del config["network"]
    (source_dir / "hcloud.yml").write_text(yaml.safe_dump(config))
    if not (source_dir / "group_vars").exists():
        (source_dir / "group_vars").symlink_to(REPO / "inventories" / "production" / "group_vars")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "HCLOUD_"))}
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), HCLOUD_TOKEN=TOKEN,
               ANSIBLE_INVENTORY_UNPARSED_FAILED="True",
               ANSIBLE_INVENTORY_CACHE_CONNECTION=str(cache_dir or tmp_path / "cache"))
    proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(source_dir / "hcloud.yml"), "--list"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _plain(value):
    return value["__ansible_unsafe"] if isinstance(value, dict) and "__ansible_unsafe" in value else value


def test_inventory_groups_hostvars_and_cache(hcloud_api, tmp_path) -> None:
    api = hcloud.Client(TOKEN, api_endpoint=hcloud_api.url + "/v1", poll_interval=0.01)
    net = api.networks.create("honeydue", ip_range="10.0.0.0/16", subnets=[
        NetworkSubnet(type="cloud", ip_range="10.0.1.0/24", network_zone="eu-central")])
    for i, role in ((1, "k3s-server"), (2, "k3s-server"), (3, "k3s-server"), (4, "k3s-agent")):
        api.servers.create(f"hetzner{i}", server_type=ServerType(name="cx33"), image=Image(name="ubuntu-24.04"),
                           labels={"cluster": "honeydue", "role": role, "env": "production"}, networks=[net])
    api.servers.create("other", server_type=ServerType(name="cx33"), image=Image(name="ubuntu-24.04"),
                       labels={"cluster": "someone-else", "role": "k3s-server"})
    inv = _inventory(tmp_path, hcloud_api)
    assert sorted(inv["k3s_servers"]["hosts"]) == ["hetzner1", "hetzner2", "hetzner3"]
    assert inv["k3s_agents"]["hosts"] == ["hetzner4"]
    assert sorted(inv["k3s_cluster"]["children"]) == ["k3s_agents", "k3s_servers"]
    assert "other" not in inv["_meta"]["hostvars"]
    host = inv["_meta"]["hostvars"]["hetzner1"]
    server = next(s for s in hcloud_api.servers.values() if s["name"] == "hetzner1")
    # SSH goes to the public address (the operator is outside); K3s and the cluster ports use the private one.
    assert _plain(host["ansible_host"]) == server["public_net"]["ipv4"]["ip"]
    assert _plain(host["ansible_user"]) == "deploy"
    assert _plain(host["honeydue_node_ip"]) == server["private_net"][0]["ip"]
    assert _plain(host["honeydue_node_ip"]).startswith("10.0.1.")
    assert host["honeydue_cluster_name"] == "honeydue"  # inventories/shared/group_vars/all.yml, linked
    assert host["honeydue_env"] == "production"  # inventories/production/group_vars/all/env.yml
    assert hcloud_api.calls("GET", r"^/v1/servers$")[-1].query["label_selector"] == ["cluster=honeydue"]

    assert _plain(host["honeydue_public_ipv4"]) == server["public_net"]["ipv4"]["ip"]
    assert _plain(host["honeydue_public_ipv6"]).endswith("::1")

    # Cached: the second read makes no API call at all.
    calls = len(hcloud_api.log)
    again = _inventory(tmp_path, hcloud_api)
    assert sorted(again["k3s_servers"]["hosts"]) == ["hetzner1", "hetzner2", "hetzner3"]
    assert len(hcloud_api.log) == calls


@pytest.mark.parametrize("unknown_totals", [True, False], ids=["last_page-null", "last_page-known"])
def test_inventory_reads_every_page_by_next_page(hcloud_api, tmp_path, unknown_totals) -> None:
    """120 servers, 3 pages of 50: with last_page and total_entries null (the vendor's answer when it
    does not know the total) the inventory still lists all of them, each with its location."""
    for i in range(120):
        server = hcloud_api._new_server({"name": f"node{i:03d}", "server_type": "cx33", "image": "ubuntu-24.04",
                                         "location": ("nbg1", "fsn1", "hel1")[i % 3],
                                         "labels": {"cluster": "honeydue", "role": "k3s-server"}})
        server["status"] = "running"
        hcloud_api.servers[server["id"]] = server
    hcloud_api.unknown_totals = unknown_totals
    inv = _inventory(tmp_path, hcloud_api, network=False)
    hostvars = inv["_meta"]["hostvars"]
    assert len(inv["k3s_servers"]["hosts"]) == 120 == len(hostvars)
    assert {_plain(hostvars[f"node{i:03d}"]["hcloud_location"]) for i in range(3)} == {"nbg1", "fsn1", "hel1"}
    assert all(_plain(h["hcloud_location"]) in ("nbg1", "fsn1", "hel1") for h in hostvars.values())
    assert all("hcloud_datacenter" not in h for h in hostvars.values())
    pages = sorted(int(r.query["page"][0]) for r in hcloud_api.calls("GET", r"^/v1/servers$"))
    assert pages == [1, 2, 3]


# -- the vendor as it is today: locked servers, taken names, lost answers -------------------------
def _fleet_play(names, **extra):
    task = {"name": "fleet", "honeydue.infra.hcloud_fleet": {
        "servers": [{"name": n} for n in names], "selector_labels": {"cluster": "honeydue"},
        "poll_interval": 0.05, **extra}, "ignore_errors": True}
    return [{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]


@pytest.mark.slow
def test_provision_waits_out_servers_locked_by_the_label_selector_firewall(hcloud_api, playbook, tmp_path) -> None:
    """Every new server matches the cloud firewall's label selector, so Hetzner starts an
    apply_firewall action on it that outlasts the create; protection meets 423 locked and waits.
    With the private network on, so that every hetzner.hcloud module the role calls (network and
    subnetwork included) runs against the stand-in as it answers today."""
    hcloud_api.action_delay, hcloud_api.firewall_apply_delay = 0.2, 1.5
    extra = _vars(tmp_path, hcloud_provision_network_enabled=True)
    run = playbook(PROVISION, env=_env(hcloud_api), extra_args=extra)
    assert run.rc == 0, run.stdout[-4000:] + run.stderr[-2000:]
    locked = [c for c in hcloud_api.calls("POST", r"/actions/change_protection$") if c.status == 423]
    assert locked, "the stand-in never locked a server: the test would prove nothing"
    assert all(s["protection"] == {"delete": True, "rebuild": True} for s in hcloud_api.servers.values())
    applied = [a for a in hcloud_api.actions.values() if a.command == "apply_firewall" and a.concerns("server")]
    assert {sid for a in applied for t, sid in a.resources if t == "server"} == set(hcloud_api.servers)
    (net,) = hcloud_api.networks.values()
    assert len(net["subnets"]) == 1 and sorted(net["servers"]) == sorted(hcloud_api.servers)
    assert all(len(s["private_net"]) == 1 for s in hcloud_api.servers.values())
    again = playbook(PROVISION, env=_env(hcloud_api), extra_args=extra)
    assert again.rc == 0 and again.changed() == 0


def test_fleet_gives_up_on_a_lock_naming_the_action(hcloud_api, playbook) -> None:
    hcloud_api.firewall_apply_delay = 30.0
    run = playbook([{"hosts": "localhost", "gather_facts": False, "tasks": [{
        "name": "firewall by label", "hetzner.hcloud.firewall": {"name": "fw", "state": "present"}}, {
        "name": "apply", "hetzner.hcloud.firewall_resource": {
            "firewall": "fw", "label_selectors": ["cluster=honeydue"], "state": "present"}}]}]
        + _fleet_play(["hetzner1"], lock_timeout=1), env=_env(hcloud_api))
    result = run.task_results("fleet")
    assert result["failed"] and result["failure"]["code"] == "locked"
    assert "apply_firewall (action" in result["msg"] and "hetzner1" in result["msg"]
    assert result["created"] == ["hetzner1"] and result["changed"] is True


def test_fleet_refuses_a_name_taken_outside_the_fleet_before_any_create(hcloud_api, playbook) -> None:
    api = hcloud.Client(TOKEN, api_endpoint=hcloud_api.url + "/v1", poll_interval=0.01)
    api.servers.create("hetzner2", server_type=ServerType(name="cx33"), image=Image(name="ubuntu-24.04"),
                       labels={"cluster": "someone-else"})
    before = len(_writes(hcloud_api))
    for check in (True, False):
        run = playbook(_fleet_play(["hetzner1", "hetzner2", "hetzner3"]), env=_env(hcloud_api),
                       extra_args=["--check"] if check else [])
        result = run.task_results("fleet")
        assert result["failed"] and result["failure"]["code"] == "name_taken", result
        assert "hetzner2" in result["msg"] and result["created"] == []
        assert len(_writes(hcloud_api)) == before  # nothing created, not even hetzner1


@pytest.mark.parametrize("drop", ["after", "before"])
def test_fleet_survives_a_lost_create_answer(hcloud_api, playbook, drop) -> None:
    """The second create's connection drops: after the server was created ("after"), or before the
    request was applied ("before"). Either way every server exists exactly once and a re-run is a no-op."""
    hcloud_api.inject(method="POST", path=r"^/v1/servers$")  # the first create passes (a no-op fault) ...
    hcloud_api.inject(method="POST", path=r"^/v1/servers$", drop=drop)  # ... the second loses its answer
    run = playbook(_fleet_play(["hetzner1", "hetzner2", "hetzner3"]), env=_env(hcloud_api))
    result = run.task_results("fleet")
    assert not result.get("failed"), result
    names = sorted(s["name"] for s in hcloud_api.servers.values())
    assert names == ["hetzner1", "hetzner2", "hetzner3"]
    assert result["created"] == ["hetzner1", "hetzner2", "hetzner3"]
    dropped = [c for c in hcloud_api.calls("POST", r"^/v1/servers$") if c.status == 0]
    assert len(dropped) == 1
    if drop == "after":
        assert result["recovered"] == [{"name": "hetzner2", "after": "connection lost (ConnectionError)"}]
        assert len(hcloud_api.calls("POST", r"^/v1/servers$")) == 3
    else:
        assert result["recovered"] == []
        assert len(hcloud_api.calls("POST", r"^/v1/servers$")) == 4
    assert not [c for c in hcloud_api.calls("POST", r"^/v1/servers$") if c.status == 409]
    assert all(s["protection"]["delete"] and s["status"] == "running" for s in hcloud_api.servers.values())
    again = playbook(_fleet_play(["hetzner1", "hetzner2", "hetzner3"]), env=_env(hcloud_api))
    assert again.task_results("fleet")["changed"] is False


@pytest.mark.slow
def test_the_network_policy_drives_the_firewall_and_first_boot(hcloud_api, playbook, tmp_path) -> None:
    """One policy: a changed SSH port and a closed Kubernetes API reach the cloud firewall and the
    first boot; a server provisioned before the private network existed gets attached to it."""
    api = hcloud.Client(TOKEN, api_endpoint=hcloud_api.url + "/v1", poll_interval=0.01)
    api.servers.create("hetzner1", server_type=ServerType(name="cx33"), image=Image(name="ubuntu-24.04"),
                       labels={"cluster": "honeydue", "role": "k3s-server", "env": "production"})
    policy = {"ssh_port": 2222, "api_public": False, "admin_cidrs": ADMIN, "origin_cidrs": ["173.245.48.0/20"],
              "private_cidr": "10.0.1.0/24"}
    run = playbook(PROVISION, env=_env(hcloud_api), extra_args=_vars(tmp_path, hcloud_provision_network_policy=policy))
    assert run.rc == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert _rules(hcloud_api) == [("tcp", "2222", tuple(ADMIN)), ("tcp", "80", ("173.245.48.0/20",)),
                                  ("tcp", "443", ("173.245.48.0/20",)), ("icmp", None, ("0.0.0.0/0", "::/0"))]
    old = next(s for s in hcloud_api.servers.values() if s["name"] == "hetzner1")
    assert old["private_net"] and hcloud_api.calls("POST", rf"^/v1/servers/{old['id']}/actions/attach_to_network$")
    user_data = yaml.safe_load(hcloud_api.calls("POST", r"^/v1/servers$")[-1].body["user_data"])
    assert user_data["disable_root"] is True and user_data["ssh_pwauth"] is False
    (dropin,) = user_data["write_files"]
    assert "PermitRootLogin no" in dropin["content"] and "Port 2222" in dropin["content"]
    assert dropin["permissions"] == "0600"
    bad = playbook(PROVISION, env=_env(hcloud_api),
                   extra_args=_vars(tmp_path, hcloud_provision_network_policy={**policy, "ssh_port": 2379}))
    assert bad.rc != 0 and "collides" in bad.stdout


def test_the_cloud_firewall_follows_an_ssh_port_move(hcloud_api, playbook, tmp_path) -> None:
    """playbooks/ssh-port.yml's outer steps (hcloud_provision tasks_from firewall_only): old and new
    SSH port while the nodes move, then the new one only; no server is touched."""
    policy = {"ssh_port": 2222, "admin_cidrs": ADMIN, "origin_cidrs": ["173.245.48.0/20"], "private_cidr": "10.0.1.0/24"}
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [{
        "name": "Cloud firewall only", "ansible.builtin.include_role": {
            "name": "honeydue.infra.hcloud_provision", "tasks_from": "firewall_only"}}]}]
    both = playbook(play, env=_env(hcloud_api), extra_args=_vars(
        tmp_path, hcloud_provision_network_policy=policy, hcloud_provision_extra_ssh_ports=[22]))
    assert both.rc == 0, both.stdout[-4000:] + both.stderr[-2000:]
    ssh = [(proto, port) for proto, port, sources in _rules(hcloud_api) if sources == tuple(ADMIN)]
    assert ssh == [("tcp", "22"), ("tcp", "2222"), ("tcp", "6443")]
    new_only = playbook(play, env=_env(hcloud_api), extra_args=_vars(tmp_path, hcloud_provision_network_policy=policy))
    assert new_only.rc == 0, new_only.stdout[-4000:] + new_only.stderr[-2000:]
    assert [(p, port) for p, port, sources in _rules(hcloud_api) if sources == tuple(ADMIN)] == [
        ("tcp", "2222"), ("tcp", "6443")]
    assert not any("/servers" in w for w in _writes(hcloud_api))


# -- Primary IPs: a replaced server keeps its public IPv4 ------------------------------------------
PRIMARY_TASK = "honeydue.infra.hcloud_provision : Primary IPv4 of every server (kept when the server is replaced)"


def _by_name(api: HcloudStandIn) -> dict:
    return {s["name"]: s for s in api.servers.values()}


@pytest.mark.slow
def test_replaced_server_keeps_its_primary_ipv4(hcloud_api, playbook, tmp_path) -> None:
    first = playbook(PROVISION, env=_env(hcloud_api), extra_args=_vars(tmp_path))
    assert first.rc == 0, first.stdout[-4000:] + first.stderr[-2000:]
    # (the IPv6 of each server is a Primary IP too: Hetzner's own, auto_delete true)
    pips = {p["name"]: p for p in hcloud_api.primary_ips.values() if p["type"] == "ipv4"}
    assert sorted(pips) == ["hetzner1-ipv4", "hetzner2-ipv4", "hetzner3-ipv4"]
    servers = _by_name(hcloud_api)
    for name, server in servers.items():
        pip = pips[f"{name}-ipv4"]
        assert pip["type"] == "ipv4" and pip["auto_delete"] is False and pip["protection"] == {"delete": True}
        assert pip["labels"] == {"cluster": "honeydue", "env": "production", "server": name}
        assert pip["assignee_id"] == server["id"] and pip["location"]["name"] == "nbg1"
        assert server["public_net"]["ipv4"] == {**server["public_net"]["ipv4"], "id": pip["id"], "ip": pip["ip"]}
    # every Primary IP is created before the first server, and each create names its own
    seq = _writes(hcloud_api)
    assert max(i for i, w in enumerate(seq) if w == "POST /v1/primary_ips") < seq.index("POST /v1/servers")
    creates = {c.body["name"]: c.body for c in hcloud_api.calls("POST", r"^/v1/servers$")}
    assert {n: b["public_net"]["ipv4"] for n, b in creates.items()} == {n: pips[f"{n}-ipv4"]["id"] for n in servers}
    # the requests the stand-in saw were all valid for today's API (no datacenter anywhere)
    assert all("datacenter" not in (c.body or {}) for c in hcloud_api.calls("POST", r"^/v1/primary_ips$"))
    assert hcloud_api.contract_violations == []
    address = servers["hetzner2"]["public_net"]["ipv4"]["ip"]
    old_id = servers["hetzner2"]["id"]

    # hetzner2 dies and is deleted through the API (protection off first, as an operator would).
    hcloud_api._get("server", old_id)["protection"] = {"delete": False, "rebuild": False}
    import requests
    auth = {"Authorization": f"Bearer {TOKEN}"}
    gone = requests.delete(f"{hcloud_api.url}/v1/servers/{old_id}", headers=auth, timeout=10)
    assert gone.status_code == 200, gone.text
    kept = pips["hetzner2-ipv4"]
    assert kept["id"] in hcloud_api.primary_ips and kept["assignee_id"] is None
    # a protected, unassigned Primary IP cannot be deleted by accident
    refused = requests.delete(f"{hcloud_api.url}/v1/primary_ips/{kept['id']}", headers=auth, timeout=10)
    assert (refused.status_code, refused.json()["error"]["code"]) == (423, "protected")

    again = playbook(PROVISION, env=_env(hcloud_api), extra_args=_vars(tmp_path))
    assert again.rc == 0, again.stdout[-4000:] + again.stderr[-2000:]
    assert again.task_results(FLEET_TASK)["created"] == ["hetzner2"]
    assert all(not r.get("changed") for r in again.task_results(PRIMARY_TASK)["results"])
    new = _by_name(hcloud_api)["hetzner2"]
    assert new["id"] != old_id and new["public_net"]["ipv4"]["ip"] == address
    pip = hcloud_api.primary_ips[kept["id"]]
    assert pip["auto_delete"] is False and pip["assignee_id"] == new["id"] and pip["protection"] == {"delete": True}
    assert sorted(p["name"] for p in hcloud_api.primary_ips.values() if p["type"] == "ipv4") == [
        "hetzner1-ipv4", "hetzner2-ipv4", "hetzner3-ipv4"]
    assert hcloud_api.contract_violations == []

    # A third run changes nothing.
    third = playbook(PROVISION, env=_env(hcloud_api), extra_args=_vars(tmp_path))
    assert third.rc == 0 and third.changed() == 0, third.stdout[-4000:]


@pytest.mark.slow
def test_primary_ipv4_off_creates_no_primary_ip(hcloud_api, playbook, tmp_path) -> None:
    run = playbook(PROVISION, env=_env(hcloud_api), extra_args=_vars(tmp_path, hcloud_provision_primary_ipv4=False))
    assert run.rc == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert hcloud_api.calls("POST", r"^/v1/primary_ips") == []
    assert all("ipv4" not in (c.body.get("public_net") or {}) for c in hcloud_api.calls("POST", r"^/v1/servers$"))
    # Hetzner's own: one per address family and server, deleted with the server
    assert all(p["auto_delete"] is True and not p["name"].endswith("-ipv4") for p in hcloud_api.primary_ips.values())
    assert len(hcloud_api.servers) == 3
