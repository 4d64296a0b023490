"""The run summary (playbooks/summary.yml, the end of site.yml, deploy.yml, upgrade.yml and
rotate-secrets.yml) against the Kubernetes and Cloudflare stand-ins, printed as an operator reads it
(the default stdout callback), and the callback that says what changed in the run."""
from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import TOKEN

ZONE = "honeydue.example"
SHA, OTHER, ABSENT = "a1b2c3d4e5f6", "0ffee1234567", "badbad1"
SERVERS = {"hetzner1": "203.0.113.10", "hetzner2": "203.0.113.11", "hetzner3": "203.0.113.12"}
APP_SECRETS = {"vault_honeydue_database_url": "postgres://app:neon-pw-Sum9@ep.neon.tech/db",
               "vault_honeydue_redis_password": "redis-pw-Sum8", "vault_honeydue_secret_key": "sk-Sum7",
               "vault_honeydue_jwt_secret": "jwt-Sum6", "vault_honeydue_b2_key_id": "b2id",
               "vault_honeydue_b2_application_key": "b2key-Sum5", "vault_honeydue_smtp_username": "u@x",
               "vault_honeydue_smtp_password": "smtp-Sum4", "vault_honeydue_registry_username": "deploy",
               "vault_honeydue_registry_password": "reg-Sum3"}
HUMAN = {"ANSIBLE_STDOUT_CALLBACK": "default", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}


@pytest.fixture
def kube() -> Iterator[Any]:
    """The Kubernetes stand-in with three Nodes named as the inventory names the servers."""
    from lab.standins.kube import KubeStandIn

    standin = KubeStandIn(token=TOKEN, nodes=0).start()
    try:
        with standin._lock:
            for i, name in enumerate(SERVERS, start=1):
                standin.register_node(name, [f"10.0.1.1{i}"])
        yield standin
    finally:
        standin.stop()
        assert not standin.contract_violations, standin.contract_violations


def inventory(tmp_path: Path, servers: dict[str, dict[str, Any]], **variables: Any) -> str:
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {
        "hosts": {"localhost": {"ansible_connection": "local"}},
        "vars": {"honeydue_domain": ZONE, **variables},
        "children": {"k3s_servers": {"hosts": servers}}}}))
    return str(path)


def summary_of(stdout: str) -> list[str]:
    """The lines of the task "Run summary" (the default callback prints the msg as a YAML block)."""
    block = stdout[stdout.index("TASK [Run summary]"):]
    block = block[block.index("msg: |-") + len("msg: |-"):]
    lines = []
    for line in block.splitlines()[1:]:
        if not line.startswith("        "):
            break
        lines.append(line[8:])
    return lines


def changed_block(stdout: str) -> list[str]:
    start = [i for i, line in enumerate(stdout.splitlines()) if "IN THIS RUN" in line]
    assert start, stdout[-3000:]
    rest = stdout.splitlines()[start[-1]:]
    return [rest[0]] + [line for line in rest[1:] if line.startswith("  ")]


def _strategic_patch(api, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(api.url + path, method="PATCH", data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}",
                                              "Content-Type": "application/strategic-merge-patch+json"})
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - the stand-in on loopback
        assert answer.status == 200


def test_deploy_yml_ends_with_the_summary_an_operator_reads(tmp_path, playbook, kube, cloudflare_api) -> None:
    kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig")
    servers = {name: {"ansible_host": ip} for name, ip in SERVERS.items()}
    inv = inventory(tmp_path, servers, honeydue_kubeconfig=str(kubeconfig), cloudflare_dns_zone=ZONE,
                    cloudflare_dns_api_base_url=f"{cloudflare_api.url}/client/v4", honeydue_app_rollout_poll=1,
                    **APP_SECRETS)
    env = {"CLOUDFLARE_API_TOKEN": TOKEN, **HUMAN}
    # DNS while hetzner3 is drained (k3s_server_dns_drain leaves it out of every name), and hetzner3's kubelet gone.
    dns = playbook("playbooks/dns.yml", inventory=inv, env=env, extra_args=["-e", '{"cloudflare_dns_exclude": ["hetzner3"]}'])
    assert dns.rc == 0, dns.stdout[-3000:]
    kube.set_node_ready("hetzner3", "Unknown")
    calls_before = len(cloudflare_api.sequence())

    run = playbook("deploy.yml", inventory=inv, env=env, extra_args=["-e", f"sha={SHA}", "-e", "skip_image_check=true"])
    assert run.rc == 0, run.stdout[-5000:] + run.stderr[-2000:]
    lines = summary_of(run.stdout)
    text = "\n".join(lines)
    assert lines[0] == "Nodes: 3, 1 NOT Ready (hetzner3), K3s v1.34.1+k3s1", text
    assert lines[3].split()[:5] == ["hetzner3", "10.0.1.13", "/", "203.0.113.12", "v1.34.1+k3s1"], lines[3]
    assert "NOT Ready (Unknown" in lines[3]
    assert "etcd: not read (deploy.yml runs without SSH)" in lines
    # K3s's stock Traefik (a Deployment, one replica) before playbooks/ingress.yml: missing on two nodes.
    assert "Traefik: a ready pod on 1 of 3 nodes; MISSING on hetzner2, hetzner3" in lines
    assert f"DNS ({ZONE}): 3 of 3 names NOT at all 3 nodes" in lines
    api_name = next(line for line in lines if line.strip().startswith(f"api.{ZONE}"))
    assert api_name.endswith("hetzner1, hetzner2; SHORT of hetzner3 (203.0.113.12)")
    assert f"App (namespace honeydue): api, admin, worker at {SHA[:7]}; release {SHA[:7]}" in lines
    assert [line.split()[:3] for line in lines if "Deployment/" in line or "StatefulSet/" in line] == [
        ["Deployment/api", SHA[:7], "3/3"], ["Deployment/admin", SHA[:7], "1/1"],
        ["StatefulSet/worker", SHA[:7], "1/1"], ["StatefulSet/redis", "7-alpine", "1/1"]]
    # The DNS part only read: one zone lookup and one listing, nothing written.
    assert cloudflare_api.sequence()[calls_before:] == [
        "GET /client/v4/zones", f"GET /client/v4/zones/{cloudflare_api.zone_by_name(ZONE)['id']}/dns_records"]
    # What changed follows the recap: the app role's tasks, by name, on the controller.
    block = changed_block(run.stdout)
    assert block[0].startswith("CHANGED IN THIS RUN: ") and block[0].endswith("on 1 host"), block
    assert block[1].startswith("  localhost (") and "honeydue_app : Record the release on the cluster" in block[1]
    assert run.stdout.index("PLAY RECAP") < run.stdout.index("CHANGED IN THIS RUN")
    for secret in (v for v in APP_SECRETS.values() if "Sum" in v):
        assert secret not in run.stdout + run.stderr
    assert TOKEN not in run.stdout + run.stderr

    # The app at two tags: admin rolled by hand, and an api rollout stuck on an image that does not exist.
    kube.declare_images([f"git.honeydue.example/honeydue/{r}:{t}" for r in ("api", "admin", "worker")
                         for t in (SHA[:7], OTHER[:7])] + ["docker.io/library/redis:7-alpine"])
    for name, tag in (("admin", OTHER[:7]), ("api", ABSENT)):
        _strategic_patch(kube, f"/apis/apps/v1/namespaces/honeydue/deployments/{name}", {"spec": {"template": {"spec": {
            "containers": [{"name": name, "image": f"git.honeydue.example/honeydue/{name}:{tag}"}]}}}})
    time.sleep(1)
    alone = playbook("playbooks/summary.yml", inventory=inv, env=env, extra_args=["-e", "honeydue_summary_ssh=false"])
    assert alone.rc == 0, alone.stdout[-4000:]
    lines = summary_of(alone.stdout)
    head = next(line for line in lines if line.startswith("App "))
    assert head.startswith(f"App (namespace honeydue): MIXED tags: api {ABSENT}, admin {OTHER[:7]}, worker {SHA[:7]}"), lines
    assert "NOT what runs" in head and "api pods at 2 tags" in head
    api_row = next(line for line in lines if line.strip().startswith("Deployment/api"))
    assert f"pods MIXED: {SHA[:7]} x3, {ABSENT} x1" in api_row, api_row
    assert "etcd: not read (this run reads no server over SSH)" in lines
    assert changed_block(alone.stdout) == ["CHANGED IN THIS RUN: nothing"]


def test_the_summary_never_fails_a_run_and_says_why_a_part_was_not_read(tmp_path, playbook) -> None:
    """No kubeconfig, no Cloudflare token, servers without etcd data and one unreachable: rc 0, and
    each part says in one line why it was not read, in a few seconds."""
    servers = {"hetzner1": {"ansible_connection": "local", "ansible_host": "203.0.113.10"},
               "hetzner2": {"ansible_connection": "local", "ansible_host": "203.0.113.11"},
               "hetzner3": {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1,
                            "honeydue_public_ipv4": "203.0.113.12"}}
    inv = inventory(tmp_path, servers, ansible_become=False, honeydue_kubeconfig=str(tmp_path / "absent-kubeconfig"),
                    cloudflare_dns_zone=ZONE)
    began = time.monotonic()
    run = playbook("playbooks/summary.yml", inventory=inv, env={**HUMAN, "CLOUDFLARE_API_TOKEN": ""})
    took = time.monotonic() - began
    assert run.rc == 0, run.stdout[-4000:]
    lines = summary_of(run.stdout)
    assert lines[0].startswith("Nodes, Traefik, App (Kubernetes API): not read (")
    assert "absent-kubeconfig" in lines[0] or "kube-config" in lines[0], lines[0]
    assert lines[1].startswith("etcd: not read (no server answered: hetzner1: no etcd data; hetzner2: no etcd data; "
                               "hetzner3: unreachable: ssh: connect to host 127.0.0.1 port 1"), lines[1]
    assert lines[2] == "DNS: not read (no Cloudflare token: vault_cloudflare_api_token or CLOUDFLARE_API_TOKEN)"
    assert len(lines) == 3
    assert changed_block(run.stdout) == ["CHANGED IN THIS RUN: nothing"]
    assert took < 30, f"the summary took {took:.1f} s"


def test_the_callback_lists_changed_tasks_by_name_never_their_results(tmp_path, playbook) -> None:
    secret = "s3cr3t-value-Zq81"
    plays = [{"name": "Small", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "A secret goes somewhere", "ansible.builtin.command": f"echo {secret}", "no_log": True, "changed_when": True},
        {"name": "Only read", "ansible.builtin.command": "true", "changed_when": False},
        {"name": "Per item", "ansible.builtin.command": "echo {{ item }}", "loop": [secret, "b"], "changed_when": True},
        {"name": "Fails but is ignored", "ansible.builtin.command": "false", "ignore_errors": True},
        {"name": "Changes then fails", "ansible.builtin.command": "false", "changed_when": True, "failed_when": True},
    ]}]
    run = playbook(plays, env=HUMAN)
    assert run.rc != 0
    block = changed_block(run.stdout)
    # A failed result that says changed counts (a write may have landed before the failure); an ignored
    # failure is not listed as failed.
    assert block == ["CHANGED IN THIS RUN: 4 tasks on 1 host",
                     "  localhost (4): A secret goes somewhere; Per item; Fails but is ignored; Changes then fails",
                     "  FAILED on localhost: Changes then fails"]
    tail = run.stdout[run.stdout.index("PLAY RECAP"):]
    assert secret not in tail

    a_file = {"name": "A file", "ansible.builtin.copy": {"content": "x\n", "dest": str(tmp_path / "f"), "mode": "0600"}}
    check = playbook([{**plays[0], "tasks": [a_file, plays[0]["tasks"][1]]}], env=HUMAN, extra_args=["--check"])
    assert changed_block(check.stdout) == ["WOULD CHANGE IN THIS RUN (check mode): 1 task on 1 host", "  localhost (1): A file"]
    assert not (tmp_path / "f").exists()

    # With the json stdout callback the block goes to stderr: stdout stays one JSON document.
    as_json = playbook([{**plays[0], "tasks": plays[0]["tasks"][:3]}])
    assert as_json.result["stats"]["localhost"]["changed"] == 2
    assert "CHANGED IN THIS RUN: 2 tasks on 1 host" in as_json.stderr and "IN THIS RUN" not in as_json.stdout
