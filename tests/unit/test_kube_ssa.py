"""Unit tests of server-side apply and field ownership (lab/standins/_kube_ssa.py).

Expected values follow structured-merge-diff (merge/update.go, typed/tofieldset.go) and the
apiserver's conflict.go message format.
"""
from __future__ import annotations

import copy
from typing import Any

import pytest

from lab.standins._kube_patch import SchemaNode
from lab.standins._kube_ssa import (Conflict, Manager, apply, compare, decode_fields, encode_fields, field_set,
                                    path_string, read_managers, typed_error, update, write_managers)
from lab.standins._kube_validate import builtin_defs, builtin_schema

DEPLOYMENT = SchemaNode(builtin_schema("Deployment", "apps/v1"), builtin_defs())
NOW = "2026-01-01T00:00:00Z"


def deployment(replicas: int = 2, labels: dict[str, str] | None = None, **container: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": labels if labels is not None else {"app": "web"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.27", **container}]}}}}


def applied_by(manager: str, config: dict[str, Any], live: dict[str, Any] | None = None,
               managers: list[Manager] | None = None, force: bool = False):
    return apply(live or {}, config, DEPLOYMENT, managers if managers is not None else [], manager, "apps/v1",
                 force, (("f:status",),))


def owner(managers: list[Manager], name: str) -> Manager:
    return next(m for m in managers if m.manager == name)


# -- field sets and FieldsV1 --------------------------------------------------------------------------
def test_field_set_of_an_applied_configuration_is_leaves_elements_and_map_entries() -> None:
    fields = field_set(deployment(ports=[{"containerPort": 80}]), DEPLOYMENT)
    container = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}')
    assert ("f:spec", "f:replicas") in fields
    assert ("f:metadata", "f:labels", "f:app") in fields  # a map entry
    assert ("f:spec", "f:selector") in fields  # LabelSelector is x-kubernetes-map-type: atomic
    assert ("f:spec", "f:selector", "f:matchLabels") not in fields
    assert container in fields and container + ("f:image",) in fields
    assert container + ("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}') in fields
    assert ("f:spec",) not in fields and ("f:metadata", "f:labels") not in fields  # non-empty structs/maps


def test_fieldsv1_encoding_marks_members_with_children_and_round_trips() -> None:
    fields = field_set(deployment(), DEPLOYMENT)
    encoded = encode_fields(fields)
    container = encoded["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert container == {".": {}, "f:image": {}, "f:name": {}}
    assert encoded["f:metadata"]["f:labels"] == {"f:app": {}}
    assert decode_fields(encoded) == fields
    assert list(encoded["f:spec"]) == ["f:replicas", "f:selector", "f:template"]  # sorted like SMD


def test_path_strings_are_the_apiserver_s() -> None:
    assert path_string(("f:spec", "f:replicas")) == ".spec.replicas"
    assert path_string(("f:spec", "f:containers", 'k:{"name":"web"}', "f:image")) == \
        '.spec.containers[name="web"].image'
    assert path_string(("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}')) == \
        '.ports[containerPort=80,protocol="TCP"]'
    assert path_string(("f:metadata", "f:finalizers", 'v:"a"')) == '.metadata.finalizers[="a"]'


def test_managed_fields_entries_round_trip_and_sort_apply_first() -> None:
    managers = [Manager("b", "Update", "apps/v1", {("f:spec", "f:replicas")}, NOW),
                Manager("a", "Apply", "apps/v1", {("f:metadata", "f:labels", "f:app")}, NOW)]
    entries = write_managers(managers)
    assert [e["operation"] for e in entries] == ["Apply", "Update"]
    assert entries[1] == {"manager": "b", "operation": "Update", "apiVersion": "apps/v1", "time": NOW,
                          "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
    assert [(m.manager, m.fields) for m in read_managers(entries)] == [(m.manager, m.fields) for m in managers[::-1]]


# -- apply ---------------------------------------------------------------------------------------------
def test_apply_by_another_manager_with_a_different_value_conflicts() -> None:
    first = applied_by("team-a", deployment(replicas=2))
    with pytest.raises(Conflict) as caught:
        applied_by("team-b", deployment(replicas=3), first.obj, first.managers)
    assert caught.value.message() == 'Apply failed with 1 conflict: conflict with "team-a": .spec.replicas'
    assert caught.value.causes() == [{"reason": "FieldManagerConflict", "message": 'conflict with "team-a"',
                                      "field": ".spec.replicas"}]


def test_conflict_with_an_update_manager_names_its_api_version_and_plural_groups_by_manager() -> None:
    managers = update(None, deployment(), DEPLOYMENT, [], "kubectl-client-side-apply", "apps/v1", NOW)
    with pytest.raises(Conflict) as caught:
        applied_by("ansible", deployment(replicas=5, image="nginx:1.28"), deployment(), managers)
    assert caught.value.message() == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-client-side-apply" using apps/v1:\n'
        '- .spec.replicas\n- .spec.template.spec.containers[name="web"].image')


def test_force_takes_the_field_from_the_other_manager() -> None:
    first = applied_by("team-a", deployment(replicas=2))
    forced = applied_by("team-b", deployment(replicas=3), first.obj, first.managers, force=True)
    assert forced.obj["spec"]["replicas"] == 3
    assert ("f:spec", "f:replicas") in owner(forced.managers, "team-b").fields
    assert ("f:spec", "f:replicas") not in owner(forced.managers, "team-a").fields


def test_same_value_is_shared_ownership_without_conflict() -> None:
    first = applied_by("team-a", deployment(replicas=2))
    second = applied_by("team-b", deployment(replicas=2), first.obj, first.managers)
    assert ("f:spec", "f:replicas") in owner(second.managers, "team-a").fields
    assert ("f:spec", "f:replicas") in owner(second.managers, "team-b").fields


def test_a_field_dropped_by_its_sole_owner_is_removed() -> None:
    first = applied_by("team-a", deployment(labels={"app": "web", "extra": "x"}))
    second = applied_by("team-a", deployment(labels={"app": "web"}), first.obj, first.managers)
    assert second.obj["metadata"]["labels"] == {"app": "web"}
    assert ("f:metadata", "f:labels", "f:extra") not in owner(second.managers, "team-a").fields


def test_a_field_dropped_but_co_owned_is_kept() -> None:
    first = applied_by("team-a", deployment(labels={"app": "web", "extra": "x"}))
    shared = applied_by("team-b", deployment(labels={"app": "web", "extra": "x"}), first.obj, first.managers)
    dropped = applied_by("team-a", deployment(labels={"app": "web"}), shared.obj, shared.managers)
    assert dropped.obj["metadata"]["labels"] == {"app": "web", "extra": "x"}
    assert owner(dropped.managers, "team-b").fields >= {("f:metadata", "f:labels", "f:extra")}


def two_containers() -> dict[str, Any]:
    config = deployment()
    config["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox"})
    return config


def names(obj: dict[str, Any]) -> list[str]:
    return [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]]


def test_a_dropped_list_element_stays_while_another_manager_owns_the_element() -> None:
    """SMD multiple_appliers_test ``remove_one_keep_one_with_dangling_subitem``."""
    first = applied_by("team-a", two_containers())
    shared = applied_by("team-b", two_containers(), first.obj, first.managers)
    dropped = applied_by("team-a", deployment(), shared.obj, shared.managers)
    assert names(dropped.obj) == ["web", "side"]


def test_a_dropped_list_element_goes_whole_when_others_own_only_a_field_inside() -> None:
    """SMD multiple_appliers_test ``remove_one_with_dangling_subitem_keep_one``."""
    first = applied_by("team-a", two_containers())
    patched = copy.deepcopy(first.obj)
    patched["spec"]["template"]["spec"]["containers"][1]["image"] = "busybox:2"
    managers = update(first.obj, patched, DEPLOYMENT, first.managers, "kubectl-edit", "apps/v1", NOW)
    assert owner(managers, "kubectl-edit").fields == {
        ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"side"}', "f:image")}
    dropped = applied_by("team-a", deployment(), patched, managers)
    assert names(dropped.obj) == ["web"]
    assert all(m.manager != "kubectl-edit" for m in dropped.managers)  # it lost its only field


def test_associative_lists_merge_per_key() -> None:
    first = applied_by("team-a", deployment(env=[{"name": "A", "value": "1"}],
                                            ports=[{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]))
    config = deployment(env=[{"name": "B", "value": "2"}], ports=[{"containerPort": 53, "protocol": "UDP"}])
    del config["spec"]["template"]["spec"]["containers"][0]["image"]
    second = applied_by("team-b", config, first.obj, first.managers)
    container = second.obj["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.27"
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert container["ports"] == [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]


def test_update_takes_only_what_it_changes_and_removes_what_it_removes() -> None:
    first = applied_by("team-a", deployment(labels={"app": "web", "extra": "x"}))
    edited = copy.deepcopy(first.obj)
    edited["spec"]["replicas"] = 4
    del edited["metadata"]["labels"]["extra"]
    managers = update(first.obj, edited, DEPLOYMENT, first.managers, "kubectl-edit", "apps/v1", NOW)
    assert owner(managers, "kubectl-edit").fields == {("f:spec", "f:replicas")}
    assert not owner(managers, "team-a").fields & {("f:spec", "f:replicas"), ("f:metadata", "f:labels", "f:extra")}


def test_a_no_op_update_records_no_entry() -> None:
    assert update(deployment(), deployment(), DEPLOYMENT, [], "kubectl", "apps/v1", NOW) == []


def test_compare_sees_added_modified_and_removed() -> None:
    diff = compare(deployment(labels={"app": "web", "old": "1"}), deployment(replicas=3, labels={"app": "web", "new": "1"}),
                   DEPLOYMENT)
    assert diff.modified == {("f:spec", "f:replicas")}
    assert diff.added == {("f:metadata", "f:labels", "f:new")}
    assert diff.removed == {("f:metadata", "f:labels", "f:old")}


def test_typed_conversion_errors_name_the_path() -> None:
    assert typed_error(deployment(ports=[{"containerPort": 80}]), DEPLOYMENT) is None  # protocol defaults
    config = deployment()
    config["spec"]["foo"] = 1
    assert typed_error(config, DEPLOYMENT) == ".spec.foo: field not declared in schema"
    assert typed_error(deployment(bogus=True), DEPLOYMENT) == \
        '.spec.template.spec.containers[name="web"].bogus: field not declared in schema'
    assert typed_error(deployment(env=[{"value": "x"}]), DEPLOYMENT) == (
        '.spec.template.spec.containers[name="web"].env: element 0: associative list with keys has an element '
        'that omits all key fields ["name"] (and doesn\'t have default values for any key fields)')
    twice = deployment()
    twice["spec"]["template"]["spec"]["containers"] *= 2
    assert typed_error(twice, DEPLOYMENT) == \
        '.spec.template.spec.containers: duplicate entries for key [name="web"]'
    config["metadata"]["bar"] = 2
    assert typed_error(config, DEPLOYMENT) == ("errors:\n  .metadata.bar: field not declared in schema\n"
                                               "  .spec.foo: field not declared in schema")


def test_merged_associative_list_order_follows_smd() -> None:
    """typed/merge.go visitListItems: shared elements in the applied order, left-only ones keep their place."""
    first = applied_by("team-a", deployment(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]))
    second = applied_by("team-b", deployment(env=[{"name": "C", "value": "3"}, {"name": "A", "value": "1"}]),
                        first.obj, first.managers)
    env = second.obj["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == ["C", "A", "B"]


def test_an_update_removing_its_own_field_loses_it() -> None:
    """managedfieldsupdater.go: the write runs as "current-operation", the writer's entry loses removals."""
    labelled = deployment(labels={"app": "web", "x": "1"})
    managers = update(deployment(), labelled, DEPLOYMENT, [], "editor", "apps/v1", NOW)
    assert owner(managers, "editor").fields == {("f:metadata", "f:labels", "f:x")}
    assert update(labelled, deployment(), DEPLOYMENT, managers, "editor", "apps/v1", "later") == []
