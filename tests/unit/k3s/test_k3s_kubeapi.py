"""Pure parts of the K3s stand-in's API layer: etcd prefix ranges, merge patches, kubectl's node table."""
from __future__ import annotations

import time

from lab.k3s._etcdclient import prefix_end
from lab.k3s._kubeapi import merge_patch, node_table


def test_prefix_end_selects_exactly_the_prefix():
    assert prefix_end(b"/registry/minions/") == b"/registry/minions0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\0"  # etcd: the whole keyspace from the key on


def test_merge_patch_sets_and_removes_annotations_like_kubectl_annotate():
    node = {"metadata": {"name": "n", "annotations": {"a": "1", "b": "2"}}, "spec": {}}
    out = merge_patch(node, {"metadata": {"annotations": {"a": None, "c": "3"}}})
    assert out["metadata"]["annotations"] == {"b": "2", "c": "3"}
    assert node["metadata"]["annotations"] == {"a": "1", "b": "2"}  # the stored object is not changed in place


def _node(name, ready, roles=("control-plane", "etcd", "master")):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 90))
    return {"metadata": {"name": name, "creationTimestamp": stamp,
                         "labels": {f"node-role.kubernetes.io/{r}": "true" for r in roles}},
            "status": {"conditions": [{"type": "Ready", "status": ready}],
                       "addresses": [{"type": "InternalIP", "address": "10.0.1.11"}],
                       "nodeInfo": {"kubeletVersion": "v1.34.6+k3s1"}}}


def test_node_table_has_kubectls_columns_and_status_words():
    table = node_table({"kind": "NodeList", "metadata": {"resourceVersion": "7"},
                        "items": [_node("node1", "True"), _node("node2", "Unknown"), _node("node3", "False")]})
    assert [c["name"] for c in table["columnDefinitions"]][:5] == ["Name", "Status", "Roles", "Age", "Version"]
    rows = [r["cells"][:5] for r in table["rows"]]
    assert rows[0][:3] + rows[0][4:] == ["node1", "Ready", "control-plane,etcd,master", "v1.34.6+k3s1"]
    assert rows[0][3] in ("90s", "91s", "92s")
    assert [r[1] for r in rows] == ["Ready", "NotReady", "NotReady"]
    assert table["rows"][0]["cells"][5] == "10.0.1.11"
