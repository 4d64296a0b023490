"""The kubelet's probe and restart rules, as the stand-in's kubelet applies them."""
from __future__ import annotations

from typing import Any

from lab.k3s import _kubeprobes as kp


def _http(path: str = "/health", **settings: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": 8080}, **settings}


def _run(spec: dict[str, Any], results: dict[str, list[bool]], until: float, step: float = 1.0,
         ) -> tuple[kp.Container, list[tuple[float, str]]]:
    """Drive one container: each due probe takes the next result of its kind (last one repeats)."""
    state, events, now = kp.start(spec, 0.0), [], 0.0
    seen = {k: 0 for k in results}
    while now <= until:
        for kind in kp.due(spec, state, now):
            answers = results[kind]
            ok = answers[min(seen[kind], len(answers) - 1)]
            seen[kind] += 1
            state, action = kp.observe(spec, state, kind, ok, now)
            if action:
                events.append((now, f"{action}:{kind}"))
            if not state.running:
                break
        if not state.running and kp.may_restart(state, now):
            state = kp.start(spec, now, state)
            events.append((now, "start"))
        now += step
    return state, events


def test_defaults_are_the_apiservers() -> None:
    assert kp.probe_setting({}, "periodSeconds") == 10
    assert kp.probe_setting({}, "failureThreshold") == 3
    assert kp.probe_setting({"failureThreshold": 48}, "failureThreshold") == 48
    assert kp.probe_setting({"initialDelaySeconds": None}, "initialDelaySeconds") == 0


def test_http_success_is_200_to_399() -> None:
    assert [kp.http_success(c) for c in (200, 302, 399, 400, 503, None)] == [True, True, True, False, False, False]


def test_startup_probe_gates_readiness_and_liveness() -> None:
    spec = {"startupProbe": _http(periodSeconds=5, failureThreshold=48),
            "readinessProbe": _http(periodSeconds=5), "livenessProbe": _http(periodSeconds=5)}
    state = kp.start(spec, 0.0)
    assert not state.started and not state.ready
    assert kp.due(spec, state, 0.0) == ["startupProbe"]
    state, action = kp.observe(spec, state, "startupProbe", False, 0.0)
    assert action == "" and kp.due(spec, state, 4.9) == []
    state, _ = kp.observe(spec, state, "startupProbe", True, 5.0)
    assert state.started and not state.ready, "readiness starts False until its own probe passes"
    assert sorted(kp.due(spec, state, 5.0)) == ["livenessProbe", "readinessProbe"]
    state, _ = kp.observe(spec, state, "readinessProbe", True, 5.0)
    assert state.ready


def test_startup_failure_threshold_times_period_restarts() -> None:
    spec = {"startupProbe": _http(periodSeconds=5, failureThreshold=48)}
    state, events = _run(spec, {"startupProbe": [False]}, until=300)
    first_kill = next(t for t, e in events if e == "restart:startupProbe")
    assert first_kill == 47 * 5, "48 failures, 5 s apart: killed at the 48th, 235 s after start"
    state, events = _run(spec, {"startupProbe": [False] * 47 + [True]}, until=300)
    assert not any(e.startswith("restart") for _, e in events) and state.started and state.ready


def test_without_readiness_probe_ready_once_started() -> None:
    assert kp.start({}, 0.0).ready
    spec = {"startupProbe": _http()}
    state = kp.start(spec, 0.0)
    assert not state.ready
    state, _ = kp.observe(spec, state, "startupProbe", True, 0.0)
    assert state.ready


def test_readiness_flaps_without_restart() -> None:
    spec = {"readinessProbe": _http(periodSeconds=1, failureThreshold=2, successThreshold=2)}
    state = kp.start(spec, 0.0)
    state, _ = kp.observe(spec, state, "readinessProbe", True, 0.0)
    assert not state.ready, "successThreshold 2"
    state, _ = kp.observe(spec, state, "readinessProbe", True, 1.0)
    assert state.ready
    state, _ = kp.observe(spec, state, "readinessProbe", False, 2.0)
    assert state.ready, "one failure of failureThreshold 2"
    state, action = kp.observe(spec, state, "readinessProbe", False, 3.0)
    assert not state.ready and action == "" and state.running


def test_liveness_failures_restart_with_backoff() -> None:
    spec = {"livenessProbe": _http(periodSeconds=1, failureThreshold=3)}
    state, events = _run(spec, {"livenessProbe": [False]}, until=120)
    starts = [t for t, e in events if e == "start"]
    kills = [t for t, e in events if e == "restart:livenessProbe"]
    assert kills[0] == 2.0, "third failure, one second apart"
    gaps = [s - k for k, s in zip(kills, starts, strict=False)]
    assert gaps[:4] == [0.0, 10.0, 20.0, 40.0], gaps
    assert state.restarts == len(starts)


def test_backoff_caps_and_resets_after_ten_minutes() -> None:
    assert [kp.backoff_delay(n) for n in (1, 2, 3, 6, 7, 20)] == [0, 10, 20, 160, 300, 300]
    state = kp.start({}, 0.0)
    for _ in range(5):
        state = kp.stopped(state, state.started_at + 1, "Error")
        state = kp.start({}, state.backoff_until, state)
    assert state.crashes == 5 and state.restarts == 5
    state = kp.stopped(state, state.started_at + 600, "Error")
    assert state.crashes == 1 and state.backoff_until == state.started_at + 600


def test_waiting_reasons_and_restart_policy() -> None:
    state = kp.Container()
    assert state.waiting_reason(0) == "ContainerCreating"
    state = kp.stopped(kp.start({}, 0.0), 1.0, "Error")
    state = kp.stopped(kp.start({}, 1.0, state), 2.0, "Error")
    assert state.waiting_reason(5.0) == "CrashLoopBackOff"
    assert not kp.may_restart(state, 5.0) and kp.may_restart(state, 12.0)
    assert not kp.may_restart(state, 100.0, "Never")
    done = kp.stopped(kp.start({}, 0.0), 1.0, "Completed")
    assert not kp.may_restart(done, 100.0, "OnFailure") and kp.may_restart(done, 100.0, "Always")
