"""ansible-inventory --list over 1,000 servers in the Hetzner stand-in, side by side:
inventories/production/hcloud.yml (honeydue.infra.hcloud) against the same inventory written for
hetzner.hcloud.hcloud (the anchor): uncached and cached wall time, and the API calls of the cached
run. `standin_s` is the time the stand-in itself spent answering (it checks every answer against
the vendor contract, which a real API does not do); the rest is the client's."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml

from _common import BIN, REPO, clean_env, standin, timed

N = 1000
# The anchor: what inventories/production/hcloud.yml would be with hetzner.hcloud.hcloud.
ANCHOR = {
    "plugin": "hetzner.hcloud.hcloud",
    "label_selector": "cluster=honeydue",
    "cache": True,
    "connect_with": "public_ipv4",
    "groups": {"k3s_servers": "hcloud_labels.role | default('') == 'k3s-server'",
               "k3s_agents": "hcloud_labels.role | default('') == 'k3s-agent'"},
    "compose": {"ansible_user": "'deploy'", "honeydue_node_ip": "hcloud_ipv4"},
}


def seed(api, n):
    """Servers straight into the stand-in's state (the API would take 1,000 POSTs)."""
    with api._lock:
        for i in range(1, n + 1):
            role = "k3s-server" if i <= 3 else "k3s-agent"
            server = api._new_server({"name": f"hetzner{i}", "server_type": "cx33", "image": "ubuntu-24.04",
                                      "location": "nbg1",
                                      "labels": {"cluster": "honeydue", "role": role, "env": "production"}})
            server["status"] = "running"
            api.servers[server["id"]] = server


def timed_dispatch(api):
    """Count the seconds the stand-in spends answering (dispatch runs under its lock, one at a time)."""
    spent = {"s": 0.0}
    original = api.dispatch

    def dispatch(req):
        start = time.monotonic()
        try:
            return original(req)
        finally:
            spent["s"] += time.monotonic() - start
    api.dispatch = dispatch
    return spent


def measure(api, config, tmp, label):
    tmp = Path(tmp) / label
    tmp.mkdir()
    (tmp / "hcloud.yml").write_text(yaml.safe_dump(dict(config, api_endpoint=api.url + "/v1")))
    env = clean_env(api, tmp, ANSIBLE_INVENTORY_CACHE_CONNECTION=str(tmp / "cache"))
    cmd = [str(BIN / "ansible-inventory"), "-i", str(tmp / "hcloud.yml"), "--list"]
    spent = timed_dispatch(api)
    uncached = timed(cmd + ["--flush-cache"], env)
    standin_s = spent["s"]
    before = len(api.log)
    cached = timed(cmd, env)
    calls = api.log[before:]
    del api.dispatch  # back to the class's method
    return uncached, standin_s, cached, calls


if __name__ == "__main__":
    api = standin()
    try:
        seed(api, N)
        ours_cfg = yaml.safe_load((REPO / "inventories" / "production" / "hcloud.yml").read_text())
        ours_cfg.pop("network", None)  # like the anchor: the seeded servers are on no private network
        with tempfile.TemporaryDirectory() as tmp:
            ours = measure(api, ours_cfg, tmp, "ours")
            anchor = measure(api, ANCHOR, tmp, "anchor")
        for label, (uncached, standin_s, cached, calls) in (("honeydue.infra.hcloud", ours),
                                                           ("hetzner.hcloud.hcloud", anchor)):
            print(f"BENCH inventory-impl impl={label} uncached_s={uncached:.2f} standin_s={standin_s:.2f} "
                  f"cached_s={cached:.2f} cached_calls={len(calls)} "
                  f"cached_call_paths={','.join(sorted({c.path for c in calls})) or '-'}", flush=True)
        print(f"BENCH inventory servers={N} uncached_s={ours[0]:.2f} cached_s={ours[2]:.2f} cached_calls={len(ours[3])} "
              f"anchor_uncached_s={anchor[0]:.2f} anchor_cached_s={anchor[2]:.2f} anchor_cached_calls={len(anchor[3])} "
              f"uncached_ratio={anchor[0] / ours[0]:.1f} cached_ratio={anchor[2] / ours[2]:.1f}", flush=True)
    finally:
        api.stop()
