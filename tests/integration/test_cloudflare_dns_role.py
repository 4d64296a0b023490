"""playbooks/dns.yml (role cloudflare_dns) against the Cloudflare stand-in, with an inventory."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import TOKEN

BIN = Path(sys.executable).parent

ZONE = "honeydue.example"


def inventory(tmp_path, hosts):
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"k3s_servers": {"hosts": hosts}}}}))
    return str(path)


def run_dns(playbook, cloudflare_api, inv, *extra, env=None):
    args = ["-e", f"cloudflare_dns_zone={ZONE}", "-e", f"cloudflare_dns_api_base_url={cloudflare_api.url}/client/v4",
            *extra]
    return playbook("playbooks/dns.yml", inventory=inv, env={"CLOUDFLARE_API_TOKEN": TOKEN} if env is None else env,
                    extra_args=args)


NODES = {"hetzner1": {"ansible_host": "203.0.113.10"}, "hetzner2": {"ansible_host": "203.0.113.11"}}


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


def vault_group_vars(tmp_path, **secrets):
    """group_vars/all/vault.yml next to the inventory, encrypted with ansible-vault (as the runbook says)."""
    password = tmp_path / "vault-pass"
    password.write_text("lab-vault-password\n")
    password.chmod(0o600)
    vault = tmp_path / "group_vars" / "all" / "vault.yml"
    vault.parent.mkdir(parents=True)
    vault.write_text(yaml.safe_dump(secrets))
    subprocess.run([str(BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(password), str(vault)],
                   check=True, capture_output=True, timeout=120)
    assert vault.read_text().startswith("$ANSIBLE_VAULT;")
    return str(password)


def test_the_token_comes_from_vault_cloudflare_api_token(tmp_path, playbook, cloudflare_api):
    """README: the Cloudflare token is vault_cloudflare_api_token (ansible-vault), else CLOUDFLARE_API_TOKEN."""
    inv = inventory(tmp_path, NODES)
    password = vault_group_vars(tmp_path, vault_cloudflare_api_token=TOKEN)
    # The vault variable wins over the environment: a wrong token there must not be used.
    run = run_dns(playbook, cloudflare_api, inv, "--vault-password-file", password,
                  env={"CLOUDFLARE_API_TOKEN": "wrong-env-token-7c1e"})
    assert run.rc == 0, run.stdout[-3000:]
    assert len(cloudflare_api.records[cloudflare_api.zone_by_name(ZONE)["id"]]) == 6
    assert {r.status for r in cloudflare_api.log} == {200}  # never a 403: the vault token was sent
    # Without any environment variable at all, too; and the token never shows.
    again = run_dns(playbook, cloudflare_api, inv, "--vault-password-file", password, "-vvv", env={})
    assert again.rc == 0 and again.changed() == 0, again.stdout[-3000:]
    assert TOKEN not in again.stdout + again.stderr


def test_the_environment_token_is_the_alternative(tmp_path, playbook, cloudflare_api):
    run = run_dns(playbook, cloudflare_api, inventory(tmp_path, NODES), env={"CLOUDFLARE_API_TOKEN": TOKEN})
    assert run.rc == 0, run.stdout[-3000:]


def test_no_token_fails_before_any_call_naming_both_sources(tmp_path, playbook, cloudflare_api):
    run = run_dns(playbook, cloudflare_api, inventory(tmp_path, NODES), env={})
    assert run.rc != 0
    assert "vault_cloudflare_api_token" in run.stdout and "CLOUDFLARE_API_TOKEN" in run.stdout
    assert cloudflare_api.sequence() == []


def test_a_ttl_other_than_1_on_proxied_records_fails_before_any_call(tmp_path, playbook, cloudflare_api):
    run = run_dns(playbook, cloudflare_api, inventory(tmp_path, NODES), "-e", "cloudflare_dns_ttl=300")
    assert run.rc != 0 and "TTL 1 (Auto)" in run.stdout
    assert cloudflare_api.sequence() == []


def test_an_excluded_host_leaves_every_name_and_comes_back_when_no_longer_excluded(tmp_path, playbook, cloudflare_api):
    """cloudflare_dns_exclude (k3s_server's DNS drain): the host's records go, the others stay untouched."""
    three = dict(NODES, hetzner3={"ansible_host": "203.0.113.12"})
    inv = inventory(tmp_path, three)
    assert run_dns(playbook, cloudflare_api, inv).rc == 0
    zone_id = cloudflare_api.zone_by_name(ZONE)["id"]
    before = {r["id"]: (r["name"], r["content"]) for r in cloudflare_api.records[zone_id].values()}
    out = run_dns(playbook, cloudflare_api, inv, "-e", '{"cloudflare_dns_exclude": ["hetzner2"]}')
    assert out.rc == 0 and out.changed() == 1, out.stdout[-3000:]
    during = {r["id"]: (r["name"], r["content"]) for r in cloudflare_api.records[zone_id].values()}
    assert during == {i: nc for i, nc in before.items() if nc[1] != "203.0.113.11"}  # the others not rewritten
    assert sorted({nc[0] for nc in during.values()}) == sorted([ZONE, f"api.{ZONE}", f"admin.{ZONE}"])
    back = run_dns(playbook, cloudflare_api, inv)
    assert back.rc == 0 and back.changed() == 1
    assert sorted(nc for nc in (
        (r["name"], r["content"]) for r in cloudflare_api.records[zone_id].values())) == sorted(before.values())


def test_excluding_every_host_fails_before_any_call(tmp_path, playbook, cloudflare_api):
    run = run_dns(playbook, cloudflare_api, inventory(tmp_path, NODES), "-e",
                  '{"cloudflare_dns_exclude": ["hetzner1", "hetzner2"]}')
    assert run.rc != 0 and "leaves no host of k3s_servers" in run.stdout, run.stdout[-3000:]
    assert cloudflare_api.sequence() == []
