"""Unit tests of the pure patch and selector functions behind the Kubernetes stand-in."""
from __future__ import annotations

import pytest

from lab.standins._kube_patch import PatchError, SchemaNode, json_patch, merge_patch, strategic_merge_patch
from lab.standins._kube_select import SelectorError, field_matcher, label_matcher, match_label_selector_object
from lab.standins._kube_validate import builtin_defs, builtin_schema

# A hand-written schema in the shape of the Kubernetes definitions ($ref into $defs + patch extensions).
DEFS = {
    "Pod": {"properties": {"spec": {"$ref": "#/$defs/PodSpec"}}},
    "PodSpec": {"properties": {
        "containers": {"type": "array", "items": {"$ref": "#/$defs/Container"},
                       "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
        "tolerations": {"type": "array", "items": {"type": "object"}},
        "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-patch-strategy": "merge"}}},
    "Container": {"properties": {
        "env": {"type": "array", "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
        "ports": {"type": "array", "x-kubernetes-patch-merge-key": "containerPort",
                  "x-kubernetes-patch-strategy": "merge"}}},
}
POD = SchemaNode({"$ref": "#/$defs/Pod"}, DEFS)


def pod(*containers: dict) -> dict:
    return {"spec": {"containers": list(containers)}}


# -- RFC 7386 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("target, patch, expected", [  # examples from RFC 7386 appendix A
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_merge_patch_rfc7386(target, patch, expected) -> None:
    assert merge_patch(target, patch) == expected


def test_merge_patch_leaves_inputs_alone() -> None:
    target, patch = {"a": {"b": 1}}, {"a": {"c": 2}}
    merge_patch(target, patch)
    assert target == {"a": {"b": 1}} and patch == {"a": {"c": 2}}


# -- strategic merge -----------------------------------------------------------------------------
def test_strategic_merges_containers_and_env_by_name() -> None:
    original = pod({"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}]},
                   {"name": "side", "image": "s:1"})
    patched = strategic_merge_patch(original, pod({"name": "app", "env": [{"name": "B", "value": "2"},
                                                                           {"name": "A", "value": "x"}]}), POD)
    app = patched["spec"]["containers"][0]
    assert app == {"name": "app", "image": "a:1", "env": [{"name": "A", "value": "x"}, {"name": "B", "value": "2"}]}
    assert patched["spec"]["containers"][1] == {"name": "side", "image": "s:1"}


def test_strategic_ports_by_container_port_and_plain_lists_replaced() -> None:
    original = {"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80, "name": "http"}]}],
                         "tolerations": [{"key": "a"}]}}
    patch = {"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80, "protocol": "TCP"},
                                                                {"containerPort": 443}]}],
                      "tolerations": [{"key": "b"}]}}
    patched = strategic_merge_patch(original, patch, POD)
    assert patched["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"},
                                                         {"containerPort": 443}]
    assert patched["spec"]["tolerations"] == [{"key": "b"}]


def test_strategic_directives() -> None:
    original = pod({"name": "app", "image": "a"}, {"name": "side", "image": "s"})
    deleted = strategic_merge_patch(original, pod({"name": "side", "$patch": "delete"}), POD)
    assert [c["name"] for c in deleted["spec"]["containers"]] == ["app"]
    replaced = strategic_merge_patch(original, {"spec": {"containers": [{"name": "new"}, {"$patch": "replace"}]}},
                                     POD)
    assert replaced["spec"]["containers"] == [{"name": "new"}]
    whole = strategic_merge_patch({"spec": {"a": 1, "b": 2}}, {"spec": {"$patch": "replace", "c": 3}}, POD)
    assert whole == {"spec": {"c": 3}}
    gone = strategic_merge_patch({"spec": {"a": 1}, "x": 1}, {"spec": {"$patch": "delete"}}, POD)
    assert gone == {"x": 1}
    nulled = strategic_merge_patch({"spec": {"a": 1, "b": 2}}, {"spec": {"a": None}}, POD)
    assert nulled == {"spec": {"b": 2}}


def test_strategic_scalar_merge_list_is_a_union() -> None:
    patched = strategic_merge_patch({"spec": {"finalizers": ["a", "b"]}}, {"spec": {"finalizers": ["b", "c"]}}, POD)
    assert patched["spec"]["finalizers"] == ["a", "b", "c"]


def test_strategic_with_the_real_deployment_schema() -> None:
    schema = SchemaNode(builtin_schema("Deployment", "apps/v1"), builtin_defs())
    original = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1",
                                                               "volumeMounts": [{"name": "d", "mountPath": "/d"}]}],
                                               "volumes": [{"name": "d", "emptyDir": {}}]}}}}
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "volumeMounts": [
        {"name": "e", "mountPath": "/e"}]}], "volumes": [{"name": "e", "emptyDir": {}}]}}}}
    spec = strategic_merge_patch(original, patch, schema)["spec"]["template"]["spec"]
    assert [m["mountPath"] for m in spec["containers"][0]["volumeMounts"]] == ["/d", "/e"]  # key: mountPath
    assert [v["name"] for v in spec["volumes"]] == ["d", "e"]
    assert spec["containers"][0]["image"] == "nginx:1"


# -- RFC 6902 ------------------------------------------------------------------------------------
def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2]}, "c": "x", "k~/": 1}
    out = json_patch(doc, [
        {"op": "add", "path": "/a/b/1", "value": 9},
        {"op": "add", "path": "/a/b/-", "value": 3},
        {"op": "remove", "path": "/c"},
        {"op": "replace", "path": "/k~0~1", "value": 2},
        {"op": "copy", "from": "/a/b", "path": "/d"},
        {"op": "move", "from": "/d", "path": "/e"},
        {"op": "test", "path": "/e/0", "value": 1},
    ])
    assert out == {"a": {"b": [1, 9, 2, 3]}, "k~/": 2, "e": [1, 9, 2, 3]}
    assert doc == {"a": {"b": [1, 2]}, "c": "x", "k~/": 1}


@pytest.mark.parametrize("ops", [
    [{"op": "test", "path": "/a", "value": 2}],
    [{"op": "remove", "path": "/missing"}],
    [{"op": "replace", "path": "/missing", "value": 1}],
    [{"op": "add", "path": "/list/5", "value": 1}],
    [{"op": "frobnicate", "path": "/a"}],
    [{"op": "add", "path": "no-slash", "value": 1}],
    {"op": "add"},
])
def test_json_patch_errors(ops) -> None:
    with pytest.raises(PatchError):
        json_patch({"a": 1, "list": []}, ops)


# -- selectors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("selector, labels, expected", [
    ("", {}, True),
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "api"}, False),
    ("app!=web", {}, True),
    ("app in (web, api)", {"app": "api"}, True),
    ("app notin (web,api)", {"app": "db"}, True),
    ("app notin (web,api)", {}, True),
    ("app in (web,api),tier", {"app": "web"}, False),
    ("!tier", {"app": "web"}, True),
    ("app.kubernetes.io/name=x", {"app.kubernetes.io/name": "x"}, True),
])
def test_label_selector_matching(selector: str, labels: dict, expected: bool) -> None:
    assert label_matcher(selector)({"metadata": {"labels": labels}}) is expected


def test_label_selector_errors_and_objects() -> None:
    with pytest.raises(SelectorError):
        label_matcher("app=(web")
    assert match_label_selector_object({"matchLabels": {"a": "1"}, "matchExpressions": [
        {"key": "b", "operator": "In", "values": ["2", "3"]}, {"key": "c", "operator": "DoesNotExist"}]},
        {"a": "1", "b": "3"})
    assert not match_label_selector_object({"matchExpressions": [{"key": "b", "operator": "Exists"}]}, {})


def test_field_selector() -> None:
    match = field_matcher("metadata.name=x,metadata.namespace!=kube-system", {"metadata.name", "metadata.namespace"})
    assert match({"metadata": {"name": "x", "namespace": "default"}})
    assert not match({"metadata": {"name": "x", "namespace": "kube-system"}})
    with pytest.raises(SelectorError, match="field label not supported: spec.x"):
        field_matcher("spec.x=1", {"metadata.name"})
