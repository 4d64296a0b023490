"""`make lab` as an operator meets it: one command from nothing to a serving cluster, then again.

The tests run in order on one lab (a fresh `make lab-down` + `make lab` first, `make lab-down` at the
end unless HONEYDUE_KEEP_LAB=1; HONEYDUE_REUSE_LAB=1 skips the first): the first run ends with the summary and a request through the edge;
the second, at -vvv, changes nothing and shows none of the lab's secrets; no secret is in a node's
file wider than 0600 or in any process's arguments; one node's container stopped while a client
polls through the edge (the Free plan: no retry on another origin), the DNS guard takes it out of
the record sets, etcd keeps quorum, the summary shows it down; the runbook's "Replace a dead node"
brings it back into the cluster and into DNS.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LAB = Path(os.environ.get("LAB_DIR") or REPO / ".lab")
KEEP = os.environ.get("HONEYDUE_KEEP_LAB") == "1"
EDGE = "203.0.113.5"
ZONE = "honeydue.example"
SERVERS = ("hetzner1", "hetzner2", "hetzner3")
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (Docker, debootstrap)")


def make(*args: str, log: str, timeout: int = 1500) -> tuple[int, str, float]:
    started = time.monotonic()
    out = REPO / ".cache" / "lab-test" / log
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as fh:
        proc = subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, stdout=fh, stderr=subprocess.STDOUT,
                              timeout=timeout, check=False)
    return proc.returncode, out.read_text(errors="replace"), time.monotonic() - started


def recap(text: str) -> dict[str, dict[str, int]]:
    return {m[1]: {"ok": int(m[2]), "changed": int(m[3]), "unreachable": int(m[4]), "failed": int(m[5])}
            for m in RECAP.finditer(text)}


def secrets() -> dict[str, str]:
    values = yaml.safe_load((LAB / "secrets.yml").read_text())
    return {k: v for k, v in values.items() if isinstance(v, str) and len(v) >= 12}


def node(name: str, command: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "exec", "-i", f"honeydue-lab-{name}", "sh", "-c", command], input=stdin,
                          capture_output=True, text=True, timeout=300, check=False)


def through_edge(host: str, path: str = "/", timeout: float = 20) -> tuple[int, dict | str]:
    req = urllib.request.Request(f"http://{EDGE}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body, status = resp.read(), resp.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    except OSError as exc:
        return 0, str(exc)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def records() -> dict[str, list[str]]:
    """The zone's proxied A records, by name, from the lab's Cloudflare (as the edge reads them)."""
    world = json.loads((LAB / "world.json").read_text())
    token = secrets()["vault_cloudflare_api_token"]

    def get(path: str) -> dict:
        req = urllib.request.Request(world["cloudflare"] + path, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())
    zone = get(f"/zones?name={ZONE}")["result"][0]["id"]
    out: dict[str, list[str]] = {}
    for rec in get(f"/zones/{zone}/dns_records?type=A&per_page=100")["result"]:
        out.setdefault(rec["name"], []).append(rec["content"])
    return {k: sorted(v) for k, v in out.items()}


def public_ip(name: str) -> str:
    out = subprocess.run(["docker", "inspect", "-f", '{{(index .NetworkSettings.Networks "honeydue-lab").IPAddress}}',
                          f"honeydue-lab-{name}"], capture_output=True, text=True, check=False)
    return out.stdout.strip()


@pytest.fixture(scope="module", autouse=True)
def lab():
    if os.environ.get("HONEYDUE_REUSE_LAB") != "1":  # a developer re-running single tests on a lab left running
        make("lab-down", log="lab-down-before.log")
    yield
    if not KEEP:
        make("lab-down", log="lab-down-after.log")


def test_make_lab_from_nothing_ends_with_the_summary_and_the_users_request_through_the_edge():
    rc, out, seconds = make("lab", log="make-lab-1.log")
    print(f"\nBENCH make_lab_fresh seconds={seconds:.0f}")
    assert rc == 0, out[-6000:]
    stats = recap(out)
    assert set(stats) == {*SERVERS, "localhost"} and not any(s["failed"] or s["unreachable"] for s in stats.values())
    # the run summary: every node Ready, three etcd voters, Traefik everywhere, DNS at all nodes, the app at the sha
    summary = out[out.rindex("TASK [Run summary]"):]
    assert "Nodes: 3, all Ready" in summary and "3 voters" in summary
    assert "Traefik: a ready pod on 3 of 3 nodes" in summary and "each at all 3 nodes" in summary
    assert re.search(r"Deployment/api\s+1ab0c0f\s+3/3 ready", summary), summary
    # the request a user makes, through the lab's Cloudflare edge to a node's Traefik and a pod
    assert re.search(r"lab: http://api\.honeydue\.example/api/health/ through the edge -> 200 \(pod api-", out), out[-2000:]
    assert re.search(r"lab: http://admin\.honeydue\.example/ through the edge -> 200 \(pod admin-", out)
    # the servers are what the Hetzner stand-in created: SSH reaches them on the addresses DNS has
    assert records()[f"api.{ZONE}"] == sorted(public_ip(n) for n in SERVERS)
    # cloud-init ran the user_data hcloud_provision rendered (the deploy user, its key, no root login)
    for name in SERVERS:
        status = node(name, "cloud-init status --long; id deploy; cat /etc/ssh/sshd_config.d/00-honeydue-firstboot.conf "
                            "2>/dev/null; ls /var/lib/cloud/instance/")
        assert "uid=" in status.stdout and "datasource" in status.stdout.lower(), status.stdout + status.stderr


def test_a_second_make_lab_at_vvv_changes_nothing_and_shows_no_secret():
    rc, out, seconds = make("lab", "LAB_ARGS=-vvv", log="make-lab-2.log")
    print(f"\nBENCH make_lab_again_vvv seconds={seconds:.0f}")
    assert rc == 0, out[-6000:]
    stats = recap(out)
    assert set(stats) == {*SERVERS, "localhost"}
    assert all(s["changed"] == 0 for s in stats.values()), stats
    assert "CHANGED IN THIS RUN: nothing" in out
    assert "<127.0.0.1> EXEC" in out or "ESTABLISH" in out, "the run was really at -vvv"
    leaked = sorted(k for k, v in secrets().items() if v in out)
    assert not leaked, f"secrets in the -vvv output: {leaked}"


def test_no_secret_in_a_node_file_wider_than_0600_or_in_any_command_line():
    values = "\n".join(secrets().values()) + "\n"
    scan = ("umask 077; cat > /run/lab-patterns; "
            "find / -xdev \\( -path /proc -o -path /sys -o -path /run/lab-patterns \\) -prune -o -type f -size -64M "
            "-print0 2>/dev/null | xargs -0 grep -lF -f /run/lab-patterns 2>/dev/null "
            "| while read -r f; do echo \"$(stat -c %a \"$f\") $f\"; done; rm -f /run/lab-patterns")
    for name in SERVERS:
        found = node(name, scan, stdin=values).stdout.split("\n")
        wide = [line for line in found if line and int(line.split()[0], 8) & 0o177]
        assert not wide, f"{name}: files wider than 0600 holding a secret: {wide}"
        args = node(name, "ps -eo args").stdout
        assert not [k for k, v in secrets().items() if v in args], f"{name}: a secret in a process's arguments"
    host_args = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=False).stdout
    assert not [k for k, v in secrets().items() if v in host_args], "a secret in a controller process's arguments"
    assert oct((LAB / "secrets.yml").stat().st_mode & 0o777) == "0o600"
    kubeconfig = REPO / "inventories" / "lab" / ".secrets" / "kubeconfig"
    assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"


class Poller:
    """A user: GET http://api.<zone>/api/health/ through the edge, 10 times a second."""

    def __init__(self) -> None:
        self.results: list[tuple[float, int]] = []
        self.when: dict[float, str] = {}  # a failure's wall-clock time (UTC), to read beside the nodes' logs
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            status, _ = through_edge(f"api.{ZONE}", "/api/health/", timeout=20)
            now, wall = time.monotonic(), time.time()
            self.results.append((now, status))
            if status != 200:
                self.when[now] = time.strftime("%H:%M:%S", time.gmtime(wall)) + f".{int(wall * 1000) % 1000:03d}"
            time.sleep(0.1)

    def __enter__(self) -> Poller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)

    def failures_since(self, t: float) -> list[tuple[float, int, str]]:
        return [(at, s, self.when.get(at, "")) for at, s in self.results if at >= t and s != 200]


def lab_env() -> dict[str, str]:
    env = dict(os.environ)
    for line in subprocess.run([".venv/bin/python", "-m", "lab.world", "env"], cwd=REPO, capture_output=True, text=True,
                               check=True).stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    return env


def playbook(*args: str, log: str) -> tuple[int, str]:
    proc = subprocess.run([".venv/bin/ansible-playbook", "-i", "inventories/lab/hcloud.yml", *args,
                           "-e", f"@{LAB / 'secrets.yml'}"], cwd=REPO, env=lab_env(), capture_output=True, text=True,
                          check=False, timeout=1200)
    (REPO / ".cache" / "lab-test" / log).write_text(proc.stdout + proc.stderr)
    return proc.returncode, proc.stdout


def test_restarts_with_dns_drain_go_through_the_guard_and_no_request_fails():
    """playbooks/reboot.yml with k3s_server_drain and k3s_server_dns_drain: each server drained (pods and, through the guard, DNS: the Node
    annotation), restarted behind the etcd gate, undrained; a user polling through the edge sees no error."""
    with Poller() as user:
        time.sleep(2)
        started = time.monotonic()
        rc, out = playbook("playbooks/reboot.yml", "-e", "k3s_reboot_all=true",
                           "-e", "k3s_server_dns_drain=true", "-e", "k3s_server_drain=true",
                           "-e", "k3s_server_reboot_command='systemctl restart k3s.service'",
                           "-e", "k3s_server_boot_time_command='systemctl show -p MainPID --value k3s.service'",
                           log="reboot-drain.log")
        assert rc == 0, out[-6000:]
        time.sleep(8)  # the guard puts the last one back after its rise threshold
        failures = user.failures_since(started)
        requests = len([r for r in user.results if r[0] >= started])
    assert requests > 50 and not failures, f"{len(failures)} of {requests} requests failed: {failures[:10]}"
    assert all(f"The guard drains {n}" in out for n in SERVERS), out[-3000:]
    events = node("hetzner1", "k3s kubectl get events -A -o json").stdout
    reasons = [e["reason"] for e in json.loads(events)["items"] if e["reason"].startswith("DNSRecord")]
    assert reasons.count("DNSRecordDrained") >= 3 and reasons.count("DNSRecordRestored") >= 3, reasons
    assert sorted(records()[f"api.{ZONE}"]) == sorted(public_ip(n) for n in SERVERS)


def test_one_node_lost_the_guard_takes_it_out_of_dns_and_etcd_keeps_quorum():
    """The Free plan: the edge never retries another origin, so only DNS routes users around a dead node."""
    dead = "hetzner3"
    dead_ip = public_ip(dead)
    assert dead_ip in records()[f"api.{ZONE}"]
    with Poller() as user:
        time.sleep(3)
        assert user.results and not user.failures_since(0), user.results[-5:]
        stopped = time.monotonic()
        subprocess.run(["docker", "stop", "-t", "1", f"honeydue-lab-{dead}"], check=True, capture_output=True)
        deadline = stopped + 90
        while time.monotonic() < deadline and dead_ip in records().get(f"api.{ZONE}", []):
            time.sleep(0.5)
        out_of_dns = time.monotonic() - stopped
        assert dead_ip not in records()[f"api.{ZONE}"], f"the guard did not take {dead} out of DNS within 90 s"
        time.sleep(8)  # the edge reads records at most once a second; then no request may fail
        calm = time.monotonic() - 5
        failures = user.failures_since(stopped)
        last_failure = max((at for at, _, _ in failures), default=stopped) - stopped
        assert not user.failures_since(calm), user.failures_since(calm)
    print(f"\nBENCH dns_guard_failover out_of_dns_s={out_of_dns:.1f} failures_stop_after_s={last_failure:.1f} "
          f"failed_requests={len(failures)} goal_s=30")
    assert last_failure < 30, f"failures went on for {last_failure:.0f} s after the node stopped"
    for name in ("api", "admin"):
        assert sorted(records()[f"{name}.{ZONE}" if name else ZONE]) == sorted(public_ip(n) for n in SERVERS if n != dead)
    # etcd keeps quorum: the API still writes (a Lease renewal, an annotation) with two of three
    write = node("hetzner1", "k3s kubectl annotate node hetzner1 lab/quorum-check=$(date +%s) --overwrite")
    assert write.returncode == 0, write.stderr
    # the summary shows the node down
    rc, out = playbook("playbooks/summary.yml", log="summary-node-down.log")
    assert rc == 0, out[-3000:]
    assert re.search(rf"{dead}\s.*NOT Ready", out), out[-3000:]
    assert re.search(r"etcd: 3 members.*\n(.*\n)*.*" + dead + r".*(NOT|unhealthy|not answering)", out, re.I), out[-3000:]


def test_the_dead_node_replaced_by_the_runbook_comes_back_into_dns():
    """docs/runbook.md "Replace a dead node": delete it at Hetzner, provision.yml, site.yml; DNS follows."""
    dead = "hetzner3"
    world = json.loads((LAB / "world.json").read_text())
    token = secrets()["vault_hcloud_token"]

    def api(method: str, path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(world["hcloud"] + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")

    def done(action: dict) -> None:
        for _ in range(60):
            if api("GET", f"/actions/{action['id']}")["action"]["status"] != "running":
                return
            time.sleep(0.5)
    # the runbook: turn off its delete protection, then delete it (the container goes with it)
    server = api("GET", f"/servers?name={dead}")["servers"][0]
    done(api("POST", f"/servers/{server['id']}/actions/change_protection", {"delete": False, "rebuild": False})["action"])
    api("DELETE", f"/servers/{server['id']}")
    rc, out, seconds = make("lab", log="make-lab-replace.log")  # site.yml: provision, harden, K3s, DNS, app
    print(f"\nBENCH replace_node seconds={seconds:.0f}")
    assert rc == 0, out[-6000:]
    summary = out[out.rindex("TASK [Run summary]"):]
    assert "Nodes: 3, all Ready" in summary and "3 voters" in summary, summary[:3000]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sorted(records()[f"api.{ZONE}"]) != sorted(public_ip(n) for n in SERVERS):
        time.sleep(1)
    assert sorted(records()[f"api.{ZONE}"]) == sorted(public_ip(n) for n in SERVERS)
    status, body = through_edge(f"api.{ZONE}", "/api/health/")
    assert status == 200, body
