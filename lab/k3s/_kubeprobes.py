"""A container's probes and restarts as the kubelet runs them: pure state, no clock of its own.

Mirrors the kubelet's prober and restart manager (Kubernetes docs "Configure Liveness, Readiness
and Startup Probes" and "Pod Lifecycle"; kubelet ``pkg/kubelet/prober`` and the container back-off):

- Defaults: ``initialDelaySeconds`` 0, ``periodSeconds`` 10, ``timeoutSeconds`` 1,
  ``successThreshold`` 1, ``failureThreshold`` 3.
- A ``startupProbe`` disables liveness and readiness until it has succeeded once;
  ``failureThreshold`` consecutive failures of it (so ``failureThreshold x periodSeconds`` after
  ``initialDelaySeconds``) kill the container, which is restarted.
- Readiness starts False. Without a readiness probe a container is ready once started (and its
  startup probe, if any, has succeeded). ``successThreshold`` consecutive successes make it ready,
  ``failureThreshold`` consecutive failures unready; readiness never restarts anything.
- ``failureThreshold`` consecutive liveness failures kill and restart the container.
- The first crash restarts at once (kubernetes/kubernetes#133472 describes this as today's
  behaviour); later ones back off 10 s, 20 s, 40 s ... capped at 300 s (``CrashLoopBackOff``
  while waiting); a container that ran 10 minutes resets the back-off (the next crash is a first).
- An HTTP probe succeeds on a status 200-399 answered within ``timeoutSeconds``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

PROBE_KINDS = ("startupProbe", "livenessProbe", "readinessProbe")
BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET_AFTER = 600.0
DEFAULTS = {"initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 1,
            "successThreshold": 1, "failureThreshold": 3}


def probe_setting(probe: dict[str, Any], name: str) -> int:
    """A probe's setting with the apiserver's default."""
    value = probe.get(name)
    return DEFAULTS[name] if value is None else int(value)


def http_success(code: int | None) -> bool:
    """Whether an HTTP probe answer counts as success (200 <= code < 400; no answer fails)."""
    return code is not None and 200 <= code < 400


def backoff_delay(crashes: int) -> float:
    """The wait after crash number ``crashes`` of a streak (1-based): none, then 10 s doubling to 300 s."""
    if crashes <= 1:
        return 0.0
    return min(BACKOFF_MAX, BACKOFF_INITIAL * (2 ** (crashes - 2)))


@dataclass(frozen=True)
class ProbeCounts:
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0


@dataclass(frozen=True)
class Container:
    """What the kubelet knows about one container between two ticks."""

    running: bool = False
    started_at: float = 0.0
    started: bool = False        # startup probe passed (or none)
    ready: bool = False
    restarts: int = 0
    crashes: int = 0             # the current crash streak (the back-off's step)
    backoff_until: float = 0.0   # CrashLoopBackOff until then
    last_exit: str = ""          # why the last instance stopped: Error, Completed, liveness, startup
    probes: dict[str, ProbeCounts] = field(default_factory=dict)

    def waiting_reason(self, now: float) -> str:
        """``CrashLoopBackOff`` while backing off, ``ContainerCreating`` before the first start."""
        if self.running:
            return ""
        if not self.last_exit:
            return "ContainerCreating"
        return "CrashLoopBackOff" if now < self.backoff_until else ""


def start(spec: dict[str, Any], now: float, previous: Container | None = None) -> Container:
    """A container (re)started at ``now``: probe clocks begin at their initial delay."""
    probes = {kind: ProbeCounts(next_at=now + probe_setting(spec[kind], "initialDelaySeconds"))
              for kind in PROBE_KINDS if spec.get(kind)}
    started = not spec.get("startupProbe")
    ready = started and not spec.get("readinessProbe")
    restarts, crashes = (previous.restarts + 1, previous.crashes) if previous else (0, 0)
    return Container(running=True, started_at=now, started=started, ready=ready, restarts=restarts,
                     crashes=crashes, probes=probes, last_exit=previous.last_exit if previous else "")


def due(spec: dict[str, Any], state: Container, now: float) -> list[str]:
    """The probes to run at ``now``: only the startup probe until it has passed."""
    if not state.running:
        return []
    kinds = ["startupProbe"] if not state.started else ["livenessProbe", "readinessProbe"]
    return [k for k in kinds if k in state.probes and now >= state.probes[k].next_at]


def observe(spec: dict[str, Any], state: Container, kind: str, ok: bool, now: float) -> tuple[Container, str]:
    """Record one probe result. Returns the new state and the action: ``""`` or ``"restart"``."""
    probe = spec[kind]
    counts = state.probes[kind]
    counts = ProbeCounts(successes=counts.successes + 1 if ok else 0,
                         failures=0 if ok else counts.failures + 1,
                         next_at=now + probe_setting(probe, "periodSeconds"))
    state = replace(state, probes={**state.probes, kind: counts})
    if kind == "startupProbe":
        if ok:
            return replace(state, started=True, ready=not spec.get("readinessProbe")), ""
        if counts.failures >= probe_setting(probe, "failureThreshold"):
            return stopped(state, now, "startup"), "restart"
        return state, ""
    if kind == "livenessProbe":
        if not ok and counts.failures >= probe_setting(probe, "failureThreshold"):
            return stopped(state, now, "liveness"), "restart"
        return state, ""
    if ok and counts.successes >= probe_setting(probe, "successThreshold"):
        return replace(state, ready=True), ""
    if not ok and counts.failures >= probe_setting(probe, "failureThreshold"):
        return replace(state, ready=False), ""
    return state, ""


def stopped(state: Container, now: float, why: str) -> Container:
    """The container stopped (``why``: Error, Completed, liveness, startup): unready, and the next
    start waits for the back-off. ``restartCount`` grows when it starts again (``start``)."""
    long_run = state.running and now - state.started_at >= BACKOFF_RESET_AFTER
    crashes = 1 if long_run else state.crashes + 1
    return replace(state, running=False, started=False, ready=False, crashes=crashes,
                   backoff_until=now + backoff_delay(crashes), last_exit=why, probes={})


def may_restart(state: Container, now: float, restart_policy: str = "Always") -> bool:
    """Whether a stopped container starts again now (restartPolicy Always, back-off elapsed)."""
    if state.running or restart_policy == "Never":
        return False
    if restart_policy == "OnFailure" and state.last_exit == "Completed":
        return False
    return now >= state.backoff_until
