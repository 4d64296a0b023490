#!/usr/bin/env python3
"""DNS benchmark: honeydue.infra.cf_dns_roundrobin vs community.general.cloudflare_dns.

Against the Cloudflare stand-in with 100 ms latency per request (a realistic round trip to the
API), in one run, side by side:

1. converge 3 names x 3 node IPs from an empty zone;
2. the same again (no-op);
3. one node's IP replaced.

(a) is this collection's module, one task; (b) is community.general.cloudflare_dns the way an
operator must write it: one task per (name, IP), plus `absent` tasks for the stale IP in step 3,
through the test-only wrapper that points it at the stand-in. Each step is one ansible-playbook
run, so process start-up is in both. Prints per-step lines and
`BENCH dns calls_ratio=... time_ratio=...` (anchor / ours: higher is better); time_ratio compares
the time spent in the tasks, process_time_ratio whole ansible-playbook runs.
"""
from __future__ import annotations

import tempfile
import time
from datetime import datetime
from pathlib import Path

from _common import REPO, TOKEN  # puts the repo and the collection on sys.path

from lab.standins.cloudflare import CloudflareStandIn
from tests.integration.conftest import run_playbook
ZONE = "honeydue.example"
NAMES = ["@", "api", "admin"]
OLD = ["203.0.113.10", "203.0.113.11", "203.0.113.12"]
NEW = ["203.0.113.10", "203.0.113.11", "203.0.113.99"]
LATENCY = float(__import__("os").environ.get("BENCH_LATENCY", "0.1"))


def ours(api, ips, stale):
    del stale  # pruning is the module's job
    task = {"name": "dns", "honeydue.infra.cf_dns_roundrobin": {
        "zone": ZONE, "api_base_url": f"{api.url}/client/v4",
        "records": [{"name": n, "values": ips} for n in NAMES]}}
    return [task]


def anchor(api, ips, stale):
    del api
    tasks = [{"name": f"{n} {ip}", "cloudflare_dns_standin": {
        "zone": ZONE, "record": n, "type": "A", "value": ip, "proxied": True, "state": "present"}}
        for n in NAMES for ip in ips]
    tasks += [{"name": f"{n} {ip} absent", "cloudflare_dns_standin": {
        "zone": ZONE, "record": n, "type": "A", "value": ip, "state": "absent"}}
        for n in NAMES for ip in stale]
    return tasks


def task_seconds(run):
    """Time spent in the tasks themselves (json callback durations), without process start-up."""
    total = 0.0
    for play in run.result.get("plays", []):
        for task in play["tasks"]:
            d = task["task"]["duration"]
            total += (datetime.fromisoformat(d["end"].replace("Z", "+00:00"))
                      - datetime.fromisoformat(d["start"].replace("Z", "+00:00"))).total_seconds()
    return total


def measure(label, tasks_for, tmp):
    api = CloudflareStandIn(token=TOKEN).start()
    api.latency = LATENCY
    env = {"CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_API_BASE_URL": f"{api.url}/client/v4",
           "ANSIBLE_LIBRARY": str(REPO / "lab" / "ansible" / "library")}
    steps = [("converge", OLD, []), ("noop", OLD, []), ("replace", NEW, sorted(set(OLD) - set(NEW)))]
    totals = {"calls": 0, "seconds": 0.0, "task_seconds": 0.0}
    try:
        for step, ips, stale in steps:
            plays = [{"name": step, "hosts": "localhost", "gather_facts": False,
                      # community.general.cloudflare_dns has no environment fallback for its token.
                      "module_defaults": {"cloudflare_dns_standin": {
                          "api_token": "{{ lookup('ansible.builtin.env', 'CLOUDFLARE_API_TOKEN') }}"}},
                      "tasks": tasks_for(api, ips, stale)}]
            api.log.clear()
            start = time.monotonic()
            run = run_playbook(Path(tmp), plays, env=env)
            seconds = time.monotonic() - start
            if run.rc != 0:
                raise SystemExit(f"{label} {step} failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
            calls, in_tasks = len(api.log), task_seconds(run)
            totals["calls"] += calls
            totals["seconds"] += seconds
            totals["task_seconds"] += in_tasks
            print(f"BENCH dns-step impl={label} step={step} calls={calls} seconds={seconds:.2f} "
                  f"task_seconds={in_tasks:.2f}", flush=True)
        records = sorted((r["name"], r["content"]) for r in api.records[api.zone_by_name(ZONE)["id"]].values())
        expected = sorted((n, ip) for n in (ZONE, f"api.{ZONE}", f"admin.{ZONE}") for ip in NEW)
        if records != expected:
            raise SystemExit(f"{label}: zone ends as {records}, expected {expected}")
    finally:
        api.stop()
    return totals


def main():
    with tempfile.TemporaryDirectory() as tmp:
        mine = measure("cf_dns_roundrobin", ours, tmp)
        base = measure("community.general.cloudflare_dns", anchor, tmp)
    # time_ratio: time in the tasks (what the module changes); process_time_ratio also counts
    # ansible-playbook's own start-up, the same ~1.3 s for both in every step.
    print(f"BENCH dns ours_calls={mine['calls']} anchor_calls={base['calls']} "
          f"ours_task_s={mine['task_seconds']:.2f} anchor_task_s={base['task_seconds']:.2f} "
          f"ours_s={mine['seconds']:.2f} anchor_s={base['seconds']:.2f} "
          f"calls_ratio={base['calls'] / mine['calls']:.1f} "
          f"time_ratio={base['task_seconds'] / mine['task_seconds']:.1f} "
          f"process_time_ratio={base['seconds'] / mine['seconds']:.1f}")


if __name__ == "__main__":
    main()
