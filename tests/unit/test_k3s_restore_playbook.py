"""playbooks/k3s-restore.yml, the parts that can be checked without a cluster: the snapshot of the reset
member is one block under one condition, and its name is read from what `k3s etcd-snapshot save` prints,
wherever it prints it. K3s logs "Snapshot <name> saved." through logrus (pkg/cli/etcdsnapshot), so on
stderr; the lab stand-in does the same (lab/k3s/_cli.py). The playbook itself runs in molecule k3s-ha:
test_the_lost_quorum_playbook_restores_from_the_survivor."""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "k3s-restore.yml"
CONDITION = "inventory_hostname == k3s_restore_host and not k3s_restore_snapshot"
NAME = "pre-rejoin-srv1-1795861966"


@functools.cache
def _tasks() -> list[dict[str, Any]]:
    return yaml.safe_load(PLAYBOOK.read_text())[0]["tasks"]


def _block() -> dict[str, Any]:
    return next(t for t in _tasks() if "block" in t)


def _restore_task() -> dict[str, Any]:
    return next(t for t in _block()["block"] if t["name"] == "That snapshot restored as the one-member cluster")


@functools.cache
def _plugin_loader() -> None:
    from ansible.plugins.loader import init_plugin_loader

    init_plugin_loader()


def snapshot_name(stdout: str, stderr: str) -> str:
    """``k3s_restore_fresh_name`` as the restore task computes it from the registered save."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    _plugin_loader()
    expression = _restore_task()["vars"]["k3s_restore_fresh_name"]
    variables = {"k3s_restore_fresh": {"rc": 0, "stdout": stdout, "stderr": stderr}}
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(expression))


def test_the_five_steps_on_the_reset_member_are_one_block_under_the_shared_condition():
    block = _block()
    assert block["when"] == CONDITION
    assert [t["name"] for t in block["block"]] == [
        "A snapshot of the reset member's data", "K3s stopped for the restore",
        "That snapshot restored as the one-member cluster", "K3s started from the restored snapshot",
        "Until the restored one-member cluster is healthy"]
    assert not any("when" in t for t in block["block"])
    assert not any(t.get("when") == CONDITION for t in _tasks() if "block" not in t)


@pytest.mark.parametrize(("stdout", "stderr"), [
    ("", f'time="2026-11-28T10:00:00Z" level=info msg="Snapshot {NAME} saved."\n'),  # K3s, not on a terminal
    ("", f"INFO[0000] Snapshot {NAME} saved. \n"),  # K3s on a terminal
    (f"Snapshot {NAME} saved.\n", ""),  # a K3s that printed it on stdout
    ("", 'time="2026-11-28T10:00:00Z" level=warning msg="Unknown flag --foo found in config.yaml, skipping"\n'
         f'time="2026-11-28T10:00:01Z" level=info msg="Snapshot {NAME} saved."\n'),
], ids=["logrus-stderr", "logrus-tty-stderr", "stdout", "after-warnings"])
def test_the_snapshot_name_is_read_from_stdout_and_stderr(stdout, stderr):
    assert snapshot_name(stdout, stderr) == NAME


def test_the_lab_stand_in_logs_the_saved_snapshot_on_stderr_as_k3s_does(capsys, tmp_path):
    from lab.k3s import _cli

    token = "K10" + "0" * 64 + "::server:" + "p" * 32
    answer = json.dumps({"lines": [f"Snapshot {NAME} saved."]}).encode()
    with mock.patch.object(_cli, "fetch", return_value=(200, answer)) as fetch:
        assert _cli.etcd_snapshot(["save", "--name", "pre-rejoin", "--token", token, "--data-dir", str(tmp_path)]) == 0
    assert json.loads(fetch.call_args.kwargs["body"])["operation"] == "save"
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.startswith('time="') and f'level=info msg="Snapshot {NAME} saved."' in out.err
    assert snapshot_name(out.out, out.err) == NAME
