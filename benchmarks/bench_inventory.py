"""ansible-inventory --list over 1,000 servers in the stand-in, with inventories/hcloud.yml:
uncached wall time, cached wall time, and the API calls the cached run makes."""
from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from _common import BIN, REPO, clean_env, standin, timed

N = 1000


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


if __name__ == "__main__":
    api = standin()
    try:
        seed(api, N)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            config = yaml.safe_load((REPO / "inventories" / "hcloud.yml").read_text())
            config["api_endpoint"] = api.url + "/v1"
            (tmp / "hcloud.yml").write_text(yaml.safe_dump(config))
            env = clean_env(api, tmp, ANSIBLE_INVENTORY_CACHE_CONNECTION=str(tmp / "cache"))
            cmd = [str(BIN / "ansible-inventory"), "-i", str(tmp / "hcloud.yml"), "--list"]
            uncached = timed(cmd + ["--flush-cache"], env)
            before = len(api.log)
            cached = timed(cmd, env)
            calls = api.log[before:]
        print(f"BENCH inventory servers={N} uncached_s={uncached:.2f} cached_s={cached:.2f} cached_calls={len(calls)} "
              f"cached_call_paths={','.join(sorted({c.path for c in calls})) or '-'}", flush=True)
    finally:
        api.stop()
