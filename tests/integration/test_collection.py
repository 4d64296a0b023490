"""The collection as an operator meets it: runnable from the checkout, and a clean Galaxy tarball."""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_galaxy_tarball_ships_the_collection_without_tests_lab_or_tooling(tmp_path):
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), str(REPO)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    tarball = tmp_path / "honeydue-infra-0.1.0.tar.gz"
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    tops = {n.split("/")[0] for n in names}
    assert {"MANIFEST.json", "FILES.json", "plugins", "meta", "README.md"} <= tops
    assert "plugins/filter/image.py" in names and "meta/runtime.yml" in names
    leaked = tops & {"tests", "lab", "molecule", "collections", ".venv", ".ci", "benchmarks", "scripts", ".cache"}
    assert not leaked, f"tarball ships {sorted(leaked)}"
    assert not [n for n in names if "__pycache__" in n]


def test_site_and_its_stages_parse_from_the_checkout(playbook):
    """`ansible-playbook site.yml` from a clean clone resolves every honeydue.infra.* it uses."""
    run = playbook(str(REPO / "site.yml"), extra_args=["--syntax-check"])
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]


def test_preflight_passes_on_a_ready_controller(playbook):
    run = playbook(str(REPO / "playbooks" / "preflight.yml"))
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stats["localhost"]["failures"] == 0


def test_the_checkout_is_the_collection_ansible_sees():
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "list", "honeydue.infra", "--format", "yaml"],
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={"PATH": f"{BIN}:/usr/bin:/bin", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                               "HOME": str(Path.home())})
    assert proc.returncode == 0, proc.stderr
    found = yaml.safe_load(proc.stdout)
    assert list(found) == [str(REPO / "collections" / "ansible_collections")], found


def test_ansible_cfg_sets_pipelining_and_forks():
    proc = subprocess.run([str(BIN / "ansible-config"), "dump", "--only-changed", "--format", "yaml"],
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={"PATH": f"{BIN}:/usr/bin:/bin", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                               "HOME": str(Path.home())})
    assert proc.returncode == 0, proc.stderr
    settings = {item["name"]: item["value"] for item in yaml.safe_load(proc.stdout) if "name" in item}
    assert settings["DEFAULT_FORKS"] >= 10
    assert settings["ANSIBLE_PIPELINING"] is True


def test_filters_work_in_a_play_by_fqcn(playbook):
    run = playbook([{
        "name": "filters", "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"name": "image", "ansible.builtin.set_fact": {
                "ref": "{{ 'honeydue/api' | honeydue.infra.image_ref('git.honeydue.example', '3f2c1ab9e0d4') }}"}},
            {"name": "bad sha", "ansible.builtin.set_fact": {
                "bad": "{{ 'honeydue/api' | honeydue.infra.image_ref('git.honeydue.example', 'HEAD') }}"},
             "ignore_errors": True},
        ],
    }])
    assert run.task_results("image")["ansible_facts"]["ref"] == "git.honeydue.example/honeydue/api:3f2c1ab"
    bad = run.task_results("bad sha")
    assert bad["failed"] and "not a git SHA" in bad["msg"]


PLUGINS = [
    ("module", "honeydue.infra.ufw_rules"),
    ("module", "honeydue.infra.hcloud_fleet"),
    ("module", "honeydue.infra.cf_dns_roundrobin"),
    ("lookup", "honeydue.infra.cloudflare_ip_ranges"),
    ("inventory", "honeydue.infra.hcloud"),
    ("filter", "honeydue.infra.image_ref"),
    ("filter", "honeydue.infra.cidr_normalize"),
    ("filter", "honeydue.infra.peer_addresses"),
    ("filter", "honeydue.infra.network_policy"),
    ("filter", "honeydue.infra.cluster_ports"),
    ("filter", "honeydue.infra.hcloud_firewall_rules"),
    ("filter", "honeydue.infra.ufw_policy_rules"),
    ("filter", "honeydue.infra.iface_for"),
    ("module", "honeydue.infra.cf_origin_tls"),
    ("module", "honeydue.infra.k3s_quorum_join"),
    ("filter", "honeydue.infra.k3s_server_config"),
    ("filter", "honeydue.infra.k3s_critical_mismatch"),
    ("module", "honeydue.infra.oci_image_exists"),
    ("filter", "honeydue.infra.rollout_status"),
    ("filter", "honeydue.infra.rollout_pending"),
    ("filter", "honeydue.infra.rollout_revert_patch"),
    ("filter", "honeydue.infra.rollout_summary"),
    ("filter", "honeydue.infra.run_summary"),
    ("callback", "honeydue.infra.run_changes"),
]


def test_every_plugin_is_listed_here():
    """A plugin added without docs coverage below fails this, so the list cannot go stale."""
    on_disk = {("module", f"honeydue.infra.{p.stem}") for p in (REPO / "plugins" / "modules").glob("*.py")}
    on_disk |= {("lookup", f"honeydue.infra.{p.stem}") for p in (REPO / "plugins" / "lookup").glob("*.py")}
    on_disk |= {("inventory", f"honeydue.infra.{p.stem}") for p in (REPO / "plugins" / "inventory").glob("*.py")}
    on_disk |= {("filter", f"honeydue.infra.{p.stem}") for p in (REPO / "plugins" / "filter").glob("*.yml")}
    on_disk |= {("callback", f"honeydue.infra.{p.stem}") for p in (REPO / "plugins" / "callback").glob("*.py")}
    assert on_disk == set(PLUGINS)


def test_every_plugin_documents_itself():
    """ansible-doc parses every plugin's documentation (a YAML slip breaks the plugin at run time)."""
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "HOME": str(Path.home())}
    for kind, name in PLUGINS:
        proc = subprocess.run([str(BIN / "ansible-doc"), "-t", kind, "--json", name],
                              capture_output=True, text=True, cwd=REPO, timeout=120, env=env)
        assert proc.returncode == 0, f"{kind} {name}: {proc.stderr}"
        doc = json.loads(proc.stdout)[name]["doc"]
        assert doc.get("short_description") and doc.get("description"), name
