"""Rollout status with kubectl rollout status semantics, the template revert patch and the summary."""
from __future__ import annotations

import copy

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.honeydue.infra.plugins.filter.rollout import FilterModule
from ansible_collections.honeydue.infra.plugins.module_utils._rollout import (
    pending,
    rollout_status,
    summary_rows,
    template_revert_patch,
)

FILTERS = FilterModule().filters()


def template(*images, init=()):
    return {"metadata": {"creationTimestamp": None, "labels": {"app": "api"}},
            "spec": {"initContainers": [{"name": f"init{i}", "image": img} for i, img in enumerate(init)],
                     "containers": [{"name": f"c{i}", "image": img} for i, img in enumerate(images)]}}


def deployment(name="api", replicas=3, generation=2, observed=2, status=None, conditions=None, images=("reg/api:new",)):
    obj = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": "honeydue", "generation": generation},
           "spec": {"replicas": replicas, "template": template(*images)},
           "status": {"observedGeneration": observed, **(status or {})}}
    if replicas is None:
        del obj["spec"]["replicas"]
    if conditions is not None:
        obj["status"]["conditions"] = conditions
    return obj


def done_deployment(**kwargs):
    n = kwargs.pop("n", 3)
    return deployment(replicas=n, status={"replicas": n, "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n}, **kwargs)


def statefulset(replicas=3, generation=4, observed=4, strategy=None, status=None):
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "honeydue", "generation": generation},
            "spec": {"replicas": replicas, "updateStrategy": strategy if strategy is not None else {"type": "RollingUpdate"},
                     "template": template("reg/db:16")},
            "status": {"observedGeneration": observed, **(status or {})}}


def daemonset(generation=1, observed=1, strategy=None, status=None):
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "kube-system", "generation": generation},
            "spec": {"updateStrategy": strategy if strategy is not None else {"type": "RollingUpdate"},
                     "template": template("reg/agent:2")},
            "status": {"observedGeneration": observed, **(status or {})}}


# -- Deployment ---------------------------------------------------------------------------------

class TestDeployment:
    def test_old_pods_all_available_but_new_ones_missing_is_not_done(self):
        # the case k8s wait gets wrong: available == replicas, yet no new replica exists
        st = rollout_status(deployment(status={"replicas": 3, "updatedReplicas": 0, "readyReplicas": 3, "availableReplicas": 3}))
        assert (st["done"], st["failed"]) == (False, False)
        assert st["message"] == 'Waiting for deployment "api" rollout to finish: 0 out of 3 new replicas have been updated...'
        assert (st["desired"], st["updated"], st["ready"], st["available"]) == (3, 0, 3, 3)

    def test_some_updated(self):
        st = rollout_status(deployment(status={"replicas": 4, "updatedReplicas": 1, "availableReplicas": 3}))
        assert not st["done"]
        assert st["message"].endswith("1 out of 3 new replicas have been updated...")

    def test_old_replicas_pending_termination(self):
        st = rollout_status(deployment(status={"replicas": 5, "updatedReplicas": 3, "availableReplicas": 5}))
        assert not st["done"]
        assert st["message"] == 'Waiting for deployment "api" rollout to finish: 2 old replicas are pending termination...'

    def test_updated_but_not_available(self):
        st = rollout_status(deployment(status={"replicas": 3, "updatedReplicas": 3, "availableReplicas": 1}))
        assert not st["done"]
        assert st["message"] == 'Waiting for deployment "api" rollout to finish: 1 of 3 updated replicas are available...'

    def test_done(self):
        st = rollout_status(done_deployment())
        assert (st["done"], st["failed"], st["reason"]) == (True, False, "")
        assert st["message"] == 'deployment "api" successfully rolled out'
        assert (st["kind"], st["name"], st["namespace"]) == ("Deployment", "api", "honeydue")
        assert (st["generation"], st["observed_generation"]) == (2, 2)

    def test_observed_generation_lag_waits_even_when_counts_look_done(self):
        st = rollout_status(done_deployment(generation=3, observed=2))
        assert not st["done"] and not st["failed"]
        assert st["message"] == "Waiting for deployment spec update to be observed..."
        assert (st["generation"], st["observed_generation"]) == (3, 2)

    def test_observed_generation_ahead_is_fine(self):
        assert rollout_status(done_deployment(generation=2, observed=3))["done"]

    def test_progress_deadline_exceeded_fails(self):
        cond = [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
        st = rollout_status(deployment(conditions=cond, status={"replicas": 4, "updatedReplicas": 1, "availableReplicas": 3}))
        assert (st["done"], st["failed"], st["reason"]) == (False, True, "ProgressDeadlineExceeded")
        assert st["message"] == 'deployment "api" exceeded its progress deadline'

    def test_progress_deadline_is_not_judged_before_the_spec_is_observed(self):
        cond = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
        st = rollout_status(deployment(generation=3, observed=2, conditions=cond))
        assert not st["failed"]
        assert st["message"] == "Waiting for deployment spec update to be observed..."

    def test_other_progressing_reasons_do_not_fail(self):
        cond = [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"},
                {"type": "ReplicaFailure", "status": "True", "reason": "ProgressDeadlineExceeded"}]
        st = rollout_status(deployment(conditions=cond, status={"updatedReplicas": 1}))
        assert not st["failed"] and not st["done"]

    def test_replicas_default_to_one(self):
        st = rollout_status(deployment(replicas=None, status={}))
        assert st["desired"] == 1 and not st["done"]
        assert st["message"].endswith("0 out of 1 new replicas have been updated...")
        one = {"replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1}
        assert rollout_status(deployment(replicas=None, status=one))["done"]

    def test_scaled_to_zero_is_done(self):
        assert rollout_status(deployment(replicas=0, status={}))["done"]

    def test_missing_status_and_generation_count_as_zero(self):
        obj = {"kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": 2}}
        st = rollout_status(obj)
        assert (st["updated"], st["ready"], st["available"], st["generation"], st["observed_generation"]) == (0, 0, 0, 0, 0)
        assert st["images"] == [] and st["namespace"] == ""
        assert st["message"].endswith("0 out of 2 new replicas have been updated...")

    def test_images_in_order_without_init_containers(self):
        obj = done_deployment(images=("reg/api:new", "reg/sidecar:1"))
        obj["spec"]["template"]["spec"]["initContainers"] = [{"name": "migrate", "image": "reg/migrate:new"}]
        assert rollout_status(obj)["images"] == ["reg/api:new", "reg/sidecar:1"]

    def test_input_is_not_modified(self):
        obj = done_deployment()
        before = copy.deepcopy(obj)
        rollout_status(obj)
        assert obj == before


# -- StatefulSet --------------------------------------------------------------------------------

class TestStatefulSet:
    def test_on_delete_fails(self):
        st = rollout_status(statefulset(strategy={"type": "OnDelete"}))
        assert (st["done"], st["failed"], st["reason"]) == (False, True, "OnDelete")
        assert st["message"] == "rollout status is only available for RollingUpdate strategy type"

    def test_observed_generation_lag(self):
        st = rollout_status(statefulset(generation=5, observed=4, status={"readyReplicas": 3}))
        assert not st["done"] and st["message"] == "Waiting for statefulset spec update to be observed..."

    def test_never_observed_waits(self):
        # kubectl: observedGeneration 0 means the controller has not seen the object at all
        st = rollout_status(statefulset(generation=0, observed=0, status={"readyReplicas": 3}))
        assert not st["done"] and st["message"] == "Waiting for statefulset spec update to be observed..."

    def test_not_ready(self):
        st = rollout_status(statefulset(status={"readyReplicas": 1, "updatedReplicas": 3}))
        assert not st["done"] and st["message"] == "Waiting for 2 pods to be ready..."

    def test_partition_waits_for_the_pods_above_it(self):
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}
        st = rollout_status(statefulset(strategy=strategy, status={"readyReplicas": 3, "updatedReplicas": 1,
                                                                   "updateRevision": "db-2", "currentRevision": "db-1"}))
        assert not st["done"]
        assert st["message"] == "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated..."

    def test_partition_complete_although_revisions_differ(self):
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}
        st = rollout_status(statefulset(strategy=strategy, status={"readyReplicas": 3, "updatedReplicas": 2,
                                                                   "updateRevision": "db-2", "currentRevision": "db-1"}))
        assert st["done"] and st["message"] == "partitioned roll out complete: 2 new pods have been updated..."

    def test_partition_zero_as_the_server_defaults_it(self):
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
        waiting = rollout_status(statefulset(strategy=strategy, status={"readyReplicas": 3, "updatedReplicas": 2}))
        assert not waiting["done"] and waiting["message"].endswith("2 out of 3 new pods have been updated...")
        assert rollout_status(statefulset(strategy=strategy, status={"readyReplicas": 3, "updatedReplicas": 3}))["done"]

    def test_revision_differs(self):
        st = rollout_status(statefulset(status={"readyReplicas": 3, "updatedReplicas": 2, "currentReplicas": 1,
                                                "updateRevision": "db-7d9f", "currentRevision": "db-5c4b"}))
        assert not st["done"]
        assert st["message"] == "waiting for statefulset rolling update to complete 2 pods at revision db-7d9f..."

    def test_revision_done(self):
        st = rollout_status(statefulset(status={"readyReplicas": 3, "updatedReplicas": 3, "currentReplicas": 3,
                                                "updateRevision": "db-7d9f", "currentRevision": "db-7d9f"}))
        assert st["done"] and not st["failed"]
        assert st["message"] == "statefulset rolling update complete 3 pods at revision db-7d9f..."
        assert (st["desired"], st["updated"], st["ready"]) == (3, 3, 3)

    def test_strategy_defaults_to_rolling_update(self):
        obj = statefulset(status={"readyReplicas": 3, "updateRevision": "r1", "currentRevision": "r1"})
        del obj["spec"]["updateStrategy"]
        assert rollout_status(obj)["done"]


# -- DaemonSet ----------------------------------------------------------------------------------

class TestDaemonSet:
    def test_on_delete_fails(self):
        st = rollout_status(daemonset(strategy={"type": "OnDelete"}))
        assert (st["done"], st["failed"], st["reason"]) == (False, True, "OnDelete")
        assert st["message"] == "rollout status is only available for RollingUpdate strategy type"

    def test_observed_generation_lag(self):
        st = rollout_status(daemonset(generation=2, observed=1, status={"desiredNumberScheduled": 3, "updatedNumberScheduled": 3,
                                                                        "numberAvailable": 3}))
        assert not st["done"] and st["message"] == "Waiting for daemon set spec update to be observed..."

    def test_not_all_updated(self):
        st = rollout_status(daemonset(status={"desiredNumberScheduled": 3, "updatedNumberScheduled": 1, "numberAvailable": 3}))
        assert not st["done"]
        assert st["message"] == 'Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods have been updated...'

    def test_not_all_available(self):
        st = rollout_status(daemonset(status={"desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 2,
                                              "numberReady": 2}))
        assert not st["done"]
        assert st["message"] == 'Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...'

    def test_done(self):
        st = rollout_status(daemonset(status={"desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3,
                                              "numberReady": 3}))
        assert st["done"] and st["message"] == 'daemon set "agent" successfully rolled out'
        assert (st["desired"], st["updated"], st["ready"], st["available"]) == (3, 3, 3, 3)
        assert (st["namespace"], st["images"]) == ("kube-system", ["reg/agent:2"])


# -- missing objects, unknown kinds, k8s_info results -------------------------------------------

class TestInputs:
    @pytest.mark.parametrize("missing", [None, {}, [], {"resources": [], "changed": False}])
    def test_missing_is_not_found(self, missing):
        st = rollout_status(missing)
        assert (st["done"], st["failed"], st["reason"], st["message"]) == (False, False, "NotFound", "not found")
        assert (st["desired"], st["updated"], st["ready"], st["available"], st["images"]) == (0, 0, 0, 0, [])

    def test_missing_names_what_k8s_info_was_asked_for(self):
        read = {"resources": [], "invocation": {"module_args": {"kind": "Deployment", "name": "api", "namespace": "honeydue"}}}
        st = rollout_status(read)
        assert (st["kind"], st["name"], st["namespace"]) == ("Deployment", "api", "honeydue")

    def test_a_resources_list_of_one_object(self):
        st = rollout_status([done_deployment()])
        assert st["done"] and st["line"] == 'Deployment/api: deployment "api" successfully rolled out'

    def test_a_resources_list_of_several_objects_is_refused(self):
        with pytest.raises(ValueError, match="a list of 2 objects where one was expected"):
            rollout_status([done_deployment(), done_deployment(name="web")])

    def test_line_of_a_missing_object(self):
        assert rollout_status([])["line"] == "not found"
        read = {"resources": [], "invocation": {"module_args": {"kind": "StatefulSet", "name": "db"}}}
        assert rollout_status(read)["line"] == "StatefulSet/db: not found"

    def test_a_k8s_info_result_with_one_object(self):
        assert rollout_status({"resources": [done_deployment()], "changed": False})["done"]

    def test_a_k8s_info_result_with_several_objects_is_refused(self):
        with pytest.raises(ValueError, match="holds 2 objects where one was expected"):
            rollout_status({"resources": [done_deployment(), done_deployment(name="web")]})

    @pytest.mark.parametrize("kind", ["ReplicaSet", "Job", "CronJob", "deployment", None])
    def test_unknown_kinds_raise(self, kind):
        with pytest.raises(ValueError, match="no status viewer"):
            rollout_status({"kind": kind, "metadata": {"name": "x"}})

    def test_not_an_object(self):
        with pytest.raises(ValueError, match="expected a Kubernetes object"):
            rollout_status("deployment/api")


# -- pending ------------------------------------------------------------------------------------

class TestPending:
    def test_only_the_unfinished(self):
        waiting = deployment(name="web", status={"replicas": 3, "updatedReplicas": 0, "availableReplicas": 3})
        out = pending([done_deployment(), waiting, None, daemonset(strategy={"type": "OnDelete"})])
        assert [(s["name"], s["done"], s["failed"], s["reason"]) for s in out] == [
            ("web", False, False, ""), ("", False, False, "NotFound"), ("agent", False, True, "OnDelete")]

    def test_all_done_is_empty(self):
        assert pending([done_deployment(), done_deployment(name="web")]) == []
        assert pending([]) == []

    def test_a_registered_loop(self):
        reads = {"results": [{"resources": [done_deployment()], "item": "api"},
                             {"resources": [], "item": "web",
                              "invocation": {"module_args": {"kind": "Deployment", "name": "web", "namespace": "honeydue"}}}]}
        assert [(s["name"], s["message"]) for s in pending(reads)] == [("web", "not found")]

    def test_resources_lists_of_a_registered_loop(self):
        # what a play gets from results | map(attribute='resources')
        waiting = deployment(name="web", status={"updatedReplicas": 1})
        out = pending([[done_deployment()], [waiting], []])
        assert [s["line"] for s in out] == [
            'Deployment/web: Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...',
            "not found"]

    def test_not_a_list(self):
        with pytest.raises(ValueError, match="expected a list"):
            pending("api")


# -- revert patch -------------------------------------------------------------------------------

class TestRevertPatch:
    def test_replaces_the_template_with_the_pre_change_one(self):
        before = deployment(images=("reg/api:old",))
        before["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
        patch = template_revert_patch(before)
        expected = copy.deepcopy(before["spec"]["template"])
        del expected["metadata"]["creationTimestamp"]
        assert patch == [{"op": "replace", "path": "/spec/template", "value": expected}]
        assert "creationTimestamp" in before["spec"]["template"]["metadata"]  # the input is left alone
        patch[0]["value"]["spec"]["containers"][0]["image"] = "changed"
        assert before["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/api:old"

    def test_a_set_creation_timestamp_is_kept(self):
        before = statefulset()
        before["spec"]["template"]["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
        assert template_revert_patch(before)[0]["value"] == before["spec"]["template"]

    def test_template_without_metadata(self):
        before = daemonset()
        del before["spec"]["template"]["metadata"]
        assert template_revert_patch(before)[0]["value"] == before["spec"]["template"]

    def test_k8s_info_result(self):
        before = deployment(images=("reg/api:old",))
        value = template_revert_patch({"resources": [before]})[0]["value"]
        assert value["spec"]["containers"][0]["image"] == "reg/api:old"

    @pytest.mark.parametrize("before", [None, {"resources": []}])
    def test_nothing_to_revert_to(self, before):
        with pytest.raises(ValueError, match="no pre-change object"):
            template_revert_patch(before)

    def test_no_template(self):
        with pytest.raises(ValueError, match="has no spec.template"):
            template_revert_patch({"kind": "Deployment", "metadata": {"name": "api"}, "spec": {}})


# -- summary ------------------------------------------------------------------------------------

class TestSummary:
    def test_rows_matched_by_kind_namespace_and_name(self):
        before = [deployment(images=("reg/api:old", "reg/sidecar:1")), statefulset()]
        other_ns = deployment(name="web", images=("reg/web:old",))
        other_ns["metadata"]["namespace"] = "staging"
        before.append(other_ns)
        api = done_deployment(images=("reg/api:new", "reg/sidecar:1"))
        web = deployment(name="web", images=("reg/web:new",), status={"readyReplicas": 1})
        agent = daemonset(status={"desiredNumberScheduled": 3, "numberReady": 2})
        rows = summary_rows(before, [api, web, None, agent])
        assert rows == [
            {"kind": "Deployment", "name": "api", "old_image": "reg/api:old", "new_image": "reg/api:new", "ready": 3, "desired": 3,
             "line": "Deployment/api: old -> new, 3/3 ready"},
            {"kind": "Deployment", "name": "web", "old_image": None, "new_image": "reg/web:new", "ready": 1, "desired": 3,
             "line": "Deployment/web: - -> new, 1/3 ready"},
            {"kind": "DaemonSet", "name": "agent", "old_image": None, "new_image": "reg/agent:2", "ready": 2, "desired": 3,
             "line": "DaemonSet/agent: - -> 2, 2/3 ready"},
        ]

    def test_a_summary_line_shows_tags_of_registry_ports_and_digests(self):
        before = [deployment(images=("reg.example:5000/api:old",))]
        after = done_deployment(images=("reg.example:5000/api@sha256:abc",))
        assert summary_rows(before, [after])[0]["line"] == "Deployment/api: old -> sha256:abc, 3/3 ready"

    def test_same_name_other_kind_does_not_match(self):
        sts = statefulset()
        sts["metadata"]["name"] = "api"
        rows = summary_rows([sts], [done_deployment()])
        assert rows[0]["old_image"] is None

    def test_flattened_and_per_item_resources(self):
        before = [[deployment(images=("reg/api:old",))], []]
        rows = summary_rows(before, [[done_deployment()], []])
        assert [(r["name"], r["old_image"], r["new_image"]) for r in rows] == [("api", "reg/api:old", "reg/api:new")]

    def test_registered_loops(self):
        before = {"results": [{"resources": [deployment(images=("reg/api:old",))]}, {"resources": []}]}
        after = {"results": [{"resources": [done_deployment()]}, {"resources": [deployment(name="web", images=())]}]}
        rows = summary_rows(before, after)
        assert [(r["name"], r["old_image"], r["new_image"]) for r in rows] == [("api", "reg/api:old", "reg/api:new"), ("web", None, None)]


# -- the filters --------------------------------------------------------------------------------

class TestFilters:
    def test_the_filter_names(self):
        assert set(FILTERS) == {"rollout_status", "rollout_pending", "rollout_revert_patch", "rollout_summary"}

    def test_each_filter_wraps_its_function(self):
        waiting = deployment(status={"replicas": 3, "updatedReplicas": 0, "availableReplicas": 3})
        assert FILTERS["rollout_status"](waiting) == rollout_status(waiting)
        assert FILTERS["rollout_pending"]([done_deployment(), waiting]) == [rollout_status(waiting)]
        assert FILTERS["rollout_revert_patch"](waiting) == template_revert_patch(waiting)
        assert FILTERS["rollout_summary"]([waiting], [done_deployment()]) == summary_rows([waiting], [done_deployment()])

    @pytest.mark.parametrize("name,args,match", [
        ("rollout_status", ({"kind": "Job", "metadata": {"name": "migrate"}},), "rollout_status: no status viewer"),
        ("rollout_pending", ([{"kind": "CronJob"}],), "rollout_pending: no status viewer"),
        ("rollout_pending", ("api",), "rollout_pending: expected a list"),
        ("rollout_revert_patch", (None,), "rollout_revert_patch: no pre-change object"),
        ("rollout_summary", ([], "api"), r"rollout_summary: expected a list of Kubernetes objects \(after\)"),
    ])
    def test_errors_are_filter_errors(self, name, args, match):
        with pytest.raises(AnsibleFilterError, match=match):
            FILTERS[name](*args)

    def test_in_an_until_expression(self):
        import jinja2

        env = jinja2.Environment()
        env.filters.update({f"honeydue.infra.{name}": func for name, func in FILTERS.items()})
        until = env.compile_expression(
            "reads | honeydue.infra.rollout_pending | length == 0"
            " or reads | honeydue.infra.rollout_pending | selectattr('failed') | list | length > 0")
        waiting = deployment(name="web", status={"replicas": 3, "updatedReplicas": 0, "availableReplicas": 3})
        stuck = deployment(name="web", conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}])
        assert until(reads=[done_deployment(), done_deployment(name="web")]) is True
        assert until(reads=[done_deployment(), waiting]) is False
        assert until(reads=[done_deployment(), stuck]) is True
