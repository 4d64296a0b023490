"""EndpointSlices follow Pod readiness, a second late, as in a real cluster."""
from __future__ import annotations

from typing import Any

from lab.standins import _kube_endpoints as ke

SVC = {"metadata": {"name": "api", "namespace": "app", "uid": "s1"},
       "spec": {"selector": {"app": "api"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def _pod(name: str, ready: bool, ip: str | None = "10.42.0.5", terminating: bool = False,
         app: str = "api") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "app", "uid": f"uid-{name}", "labels": {"app": app}}
    if terminating:
        meta["deletionTimestamp"] = "2026-11-28T10:00:00Z"
    status: dict[str, Any] = {"phase": "Running",
                              "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
    return {"metadata": meta, "status": status,
            "spec": {"nodeName": "n1", "containers": [{"name": "api", "ports": [{"name": "http",
                                                                                   "containerPort": 8000}]}]}}


def test_selected_pods_with_ip_and_named_target_port() -> None:
    got = ke.desired(SVC, [_pod("a", True), _pod("b", False, "10.42.1.5"), _pod("c", True, None),
                           _pod("d", True, app="other")])
    assert list(got) == [(("http", 8000, "TCP"),)]
    eps = got[(("http", 8000, "TCP"),)]
    assert set(eps) == {"uid-a", "uid-b"}
    assert eps["uid-a"]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert eps["uid-b"]["conditions"]["ready"] is False
    assert eps["uid-a"]["targetRef"]["name"] == "a" and eps["uid-a"]["nodeName"] == "n1"


def test_terminating_pod_is_serving_but_not_ready() -> None:
    ep = ke.endpoint(SVC, _pod("a", True, terminating=True))
    assert ep["conditions"] == {"ready": False, "serving": True, "terminating": True}
    publish = {**SVC, "spec": {**SVC["spec"], "publishNotReadyAddresses": True}}
    assert ke.endpoint(publish, _pod("b", False))["conditions"]["ready"] is True


def test_changes_show_after_the_delay_and_restart_their_clock_when_they_change_again() -> None:
    ready = ke.endpoint(SVC, _pod("a", True))
    unready = ke.endpoint(SVC, _pod("a", False))
    published, seen = ke.propagate({}, {"uid-a": ready}, {}, now=0.0, delay=1.0)
    assert published == {}, "not yet"
    published, seen = ke.propagate(published, {"uid-a": ready}, seen, now=0.6, delay=1.0)
    assert published == {}
    published, seen = ke.propagate(published, {"uid-a": ready}, seen, now=1.0, delay=1.0)
    assert published == {"uid-a": ready} and seen == {}
    published, seen = ke.propagate(published, {"uid-a": unready}, seen, now=2.0, delay=1.0)
    published, seen = ke.propagate(published, {"uid-a": ready}, seen, now=2.5, delay=1.0)
    assert published == {"uid-a": ready} and seen == {}, "flapped back before the delay: nothing to publish"
    published, seen = ke.propagate(published, {}, seen, now=3.0, delay=1.0)
    assert "uid-a" in published, "a deleted pod stays an endpoint for the delay too"
    published, _ = ke.propagate(published, {}, seen, now=4.0, delay=1.0)
    assert published == {}


def test_slice_object_shape() -> None:
    obj = ke.slice_object(SVC, "api-x7k2p", (("http", 8000, "TCP"),), [])
    assert obj["endpoints"] is None and obj["addressType"] == "IPv4"
    assert obj["metadata"]["labels"] == {"kubernetes.io/service-name": "api",
                                         "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    assert obj["metadata"]["ownerReferences"][0]["kind"] == "Service"
