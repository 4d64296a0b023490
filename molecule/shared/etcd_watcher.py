"""The etcd watcher the K3s scenarios run on their mirror host: polls the member list and endpoint
health with etcdctl over the private network every 0.5 s (K3s's etcd client certificate in
/run/watch) and writes one JSON line per change. Shared by molecule/k3s-standin and k3s-ha."""

WATCHER = r"""
import json, os, subprocess, sys, threading, time
endpoints, stop, log = sys.argv[1], sys.argv[2], sys.argv[3]
lock, out = threading.Lock(), open(log, "a", buffering=1)
def run(*args):
    p = subprocess.run(["etcdctl", "--endpoints", endpoints, "--cacert", "/run/watch/ca.crt", "--cert",
                        "/run/watch/client.crt", "--key", "/run/watch/client.key", "--command-timeout", "1s",
                        "--dial-timeout", "0.5s", "-w", "json", *args], capture_output=True, text=True)
    return p.returncode, p.stdout
def record(kind, value):
    with lock:
        out.write(json.dumps({"t": time.time(), kind: value}) + "\n")
def members():
    last = None
    while not os.path.exists(stop):
        rc, raw = run("member", "list")
        names = sorted((m.get("name", ""), bool(m.get("isLearner"))) for m in json.loads(raw).get("members", [])) if rc == 0 else None
        if names is not None and names != last:
            record("members", names)
            last = names
        time.sleep(0.5)
def health():
    last = None
    while not os.path.exists(stop):
        rc, raw = run("endpoint", "health")
        try:
            healthy = sorted((h["endpoint"], h["health"]) for h in json.loads(raw)) if raw.strip() else None
        except ValueError:
            healthy = None
        if healthy != last:
            record("health", healthy)
            last = healthy
        time.sleep(0.5)
threading.Thread(target=health, daemon=True).start()
members()
"""
