"""playbooks/dns.yml (role cloudflare_dns) against the Cloudflare stand-in, with an inventory."""
from __future__ import annotations

import yaml

from tests.conftest import TOKEN

ZONE = "honeydue.example"


def inventory(tmp_path, hosts):
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"k3s_servers": {"hosts": hosts}}}}))
    return str(path)


def run_dns(playbook, cloudflare_api, inv, *extra):
    args = ["-e", f"cloudflare_dns_zone={ZONE}", "-e", f"cloudflare_dns_api_base_url={cloudflare_api.url}/client/v4",
            *extra]
    return playbook("playbooks/dns.yml", inventory=inv, env={"CLOUDFLARE_API_TOKEN": TOKEN}, extra_args=args)


def test_names_point_at_every_node_and_a_rerun_changes_nothing(tmp_path, playbook, cloudflare_api):
    inv = inventory(tmp_path, {
        "hetzner1": {"ansible_host": "203.0.113.10"},
        "hetzner2": {"ansible_host": "203.0.113.11"},
        "hetzner3": {"ansible_host": "hetzner3.example", "honeydue_public_ipv4": "203.0.113.12"},
    })
    first = run_dns(playbook, cloudflare_api, inv)
    assert first.rc == 0, first.stdout[-3000:]
    zone_id = cloudflare_api.zone_by_name(ZONE)["id"]
    records = cloudflare_api.records[zone_id].values()
    assert sorted((r["name"], r["content"], r["proxied"], r["comment"]) for r in records) == sorted(
        (name, ip, True, "managed by honeydue.infra")
        for name in (ZONE, f"api.{ZONE}", f"admin.{ZONE}") for ip in ("203.0.113.10", "203.0.113.11", "203.0.113.12"))
    second = run_dns(playbook, cloudflare_api, inv)
    assert second.rc == 0 and second.changed() == 0


def test_an_empty_group_never_wipes_dns(tmp_path, playbook, cloudflare_api):
    inv = inventory(tmp_path, {})
    run = run_dns(playbook, cloudflare_api, inv)
    assert run.rc != 0
    assert cloudflare_api.sequence() == []  # refused before any API call


def test_a_node_without_a_public_address_fails_clearly(tmp_path, playbook, cloudflare_api):
    inv = inventory(tmp_path, {"hetzner1": {"ansible_host": "203.0.113.10"}, "hetzner2": {"ansible_host": "h2.example"}})
    run = run_dns(playbook, cloudflare_api, inv)
    assert run.rc != 0 and "no IP address for hetzner2" in run.stdout
    assert cloudflare_api.sequence() == []
