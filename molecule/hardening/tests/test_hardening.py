"""base_hardening proven with real traffic between lab containers.

`outside` plays the internet: it is on the public lab network only. The nodes are also on a
second network, the private one (PRIVATE_NET), as Hetzner servers are on the cluster's private
network. Listeners are started on node1 for every port in question, so "dropped" (a connect that
times out) is told apart from "closed" (refused) and "open" (accepted).
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import time

import pytest
import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
SCENARIO = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
CLUSTER_TCP = [6443, 2379, 2380, 10250]
PRIVATE_ONLY_TCP = [2379, 2380, 10250]  # 6443 is also open from the admin CIDRs while api_public
PRIVATE_NET = ipaddress.ip_network("10.77.0.0/24")  # molecule.yml: honeydue-hardening-private
LISTENER = r"""
import socket, sys, threading
def tcp(port):
    s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind(("::", port)); s.listen(16)
    while True:
        c, _ = s.accept(); c.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    while True:
        data, _ = s.recvfrom(512)
        with open("/run/probe-udp.log", "ab") as fh: fh.write(data + b"\n")
for p in (80, 443, 6443, 2379, 2380, 10250):
    threading.Thread(target=tcp, args=(p,), daemon=True).start()
udp(8472)
"""


def host(name):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


@pytest.fixture(scope="module")
def node1():
    h = host("node1")
    h.run("systemctl stop probe-listener 2>/dev/null; rm -f /run/probe-udp.log")
    h.check_output("cat > /run/probe_listener.py <<'PY'\n%s\nPY" % LISTENER)
    h.check_output("systemd-run --unit=probe-listener /usr/bin/python3 /run/probe_listener.py")
    for _ in range(50):
        if h.socket("tcp://0.0.0.0:6443").is_listening or h.socket("tcp://:::6443").is_listening:
            break
        time.sleep(0.1)
    yield h
    h.run("systemctl stop probe-listener")


def tcp_probe(client, target, port):
    """'open' (connected), 'dropped' (no answer within 3 s) or 'refused'."""
    rc = client.run(f"timeout 3 bash -c 'exec 3<>/dev/tcp/{target}/{port}'").rc
    return {0: "open", 124: "dropped"}.get(rc, "refused")


def addresses(h):
    """(public, private) IPv4 addresses of a lab container."""
    found = [ipaddress.ip_address(a.split("/")[0]) for a in
             h.check_output("ip -4 -o addr show scope global | awk '{print $4}'").split()]
    private = [str(a) for a in found if a in PRIVATE_NET]
    public = [str(a) for a in found if a not in PRIVATE_NET]
    return (public[0] if public else None), (private[0] if private else None)


def udp_reaches(client, node, port, tag, target="node1"):
    """Whether a datagram sent from ``client`` to ``target`` arrives at node1's listener."""
    sent = client.run(f"bash -c 'echo {tag} > /dev/udp/{target}/{port}'")
    assert sent.rc == 0, sent.stderr  # the probe itself must have gone out
    time.sleep(1)
    return tag in node.run("cat /run/probe-udp.log 2>/dev/null").stdout


def converge(*extra):
    """Re-run the scenario's converge play as an operator would, with extra vars.

    Returns (return code, json callback document).
    """
    cmd = ["ansible-playbook", "-i", INVENTORY, os.path.join(SCENARIO, "converge.yml"), *extra]
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        doc = {"raw": proc.stdout + proc.stderr}
    return proc.returncode, doc


def failure_messages(doc):
    return [str(result.get("msg", "")) for play in doc.get("plays", []) for task in play["tasks"]
            for result in task["hosts"].values() if result.get("failed")]


@pytest.fixture
def no_bans(node1):
    """SSH tests that fail logins on purpose (wrong keys, root, weak key exchanges) would add up to a
    ban of `outside` (the jail's aggressive mode counts each): from the first of them on, `outside`
    stays on the jail's ignore list, so journal lines fail2ban reads late cannot ban it between two
    tests either. Only the fail2ban test takes it off (fresh_jail)."""
    outside_ip = host("outside").interface("eth0").addresses[0]
    node1.check_output(f"fail2ban-client set sshd addignoreip {outside_ip}")
    node1.check_output("fail2ban-client unban --all")
    yield
    node1.check_output("fail2ban-client unban --all")


@pytest.fixture
def fresh_jail(node1):
    """`outside` off the ignore list, no ban: failed logins from now on count."""
    outside_ip = host("outside").interface("eth0").addresses[0]
    node1.run(f"fail2ban-client set sshd delignoreip {outside_ip}")
    time.sleep(2)  # what fail2ban still had to read from the journal was from an ignored address
    node1.check_output("fail2ban-client unban --all")
    yield
    node1.check_output("fail2ban-client unban --all")


# -- from the internet ---------------------------------------------------------------------------
def test_outside_reaches_ssh(node1, no_bans):
    assert tcp_probe(host("outside"), "node1", 22) == "open"


@pytest.mark.parametrize("port", PRIVATE_ONLY_TCP)
def test_outside_cannot_reach_cluster_ports(node1, port):
    assert tcp_probe(host("outside"), "node1", port) == "dropped"


def test_outside_cannot_reach_flannel_vxlan(node1):
    assert not udp_reaches(host("outside"), node1, 8472, "from-outside")


@pytest.mark.parametrize("port", [80, 443])
def test_outside_cannot_reach_the_origin_directly(node1, port):
    assert tcp_probe(host("outside"), "node1", port) == "dropped"


def test_origin_opens_to_an_address_in_the_cloudflare_list_and_closes_again(node1):
    outside_ip = host("outside").interface("eth0").addresses[0]
    rc, doc = converge("-e", json.dumps({"lab_extra_origins": [outside_ip]}), "--limit", "k3s_servers")
    assert rc == 0, failure_messages(doc) or doc
    try:
        assert tcp_probe(host("outside"), "node1", 80) == "open"
        assert tcp_probe(host("outside"), "node1", 443) == "open"
    finally:
        rc, doc = converge("--limit", "k3s_servers")
        assert rc == 0, failure_messages(doc) or doc
    # The address left the list, so its rule is gone (rules converge, they do not accumulate).
    assert tcp_probe(host("outside"), "node1", 80) == "dropped"
    assert outside_ip not in node1.check_output("ufw show added")


# -- between nodes: on the private network only ---------------------------------------------------
@pytest.mark.parametrize("port", CLUSTER_TCP)
def test_node2_reaches_cluster_ports_on_node1s_private_address(node1, port):
    assert tcp_probe(host("node2"), addresses(node1)[1], port) == "open"


def test_node2_reaches_flannel_vxlan_on_node1s_private_address(node1):
    assert udp_reaches(host("node2"), node1, 8472, "from-node2-private", target=addresses(node1)[1])


@pytest.mark.parametrize("port", PRIVATE_ONLY_TCP)
def test_cluster_ports_are_filtered_on_the_public_address_even_for_a_peer(node1, port):
    """A listener answers on every address, so only the firewall keeps the public side shut."""
    assert tcp_probe(host("node2"), addresses(node1)[0], port) == "dropped"


def test_flannel_is_filtered_on_the_public_address_even_for_a_peer(node1):
    assert not udp_reaches(host("node2"), node1, 8472, "from-node2-public", target=addresses(node1)[0])


def test_the_kubernetes_api_is_open_to_the_admin_cidrs_and_closable(node1):
    """deploy.yml and kubectl reach 6443 from the operator's machine (admin CIDRs, 0.0.0.0/0 in the
    lab); api_public false closes it on the public side while the nodes still reach it privately."""
    outside, node2 = host("outside"), host("node2")
    public, private = addresses(node1)
    assert tcp_probe(outside, "node1", 6443) == "open"
    limit = ("--limit", "k3s_servers", "--tags", "firewall")
    rc, doc = converge("-e", json.dumps({"base_hardening_api_public": False}), *limit)
    assert rc == 0, failure_messages(doc) or doc
    try:
        assert tcp_probe(outside, "node1", 6443) == "dropped"
        assert tcp_probe(node2, public, 6443) == "dropped"
        assert tcp_probe(node2, private, 6443) == "open"
        assert tcp_probe(outside, "node1", 22) == "open"
    finally:
        rc, doc = converge(*limit)
        assert rc == 0, failure_messages(doc) or doc
    assert tcp_probe(outside, "node1", 6443) == "open"


def test_outside_is_on_the_public_network_only():
    public, private = addresses(host("outside"))
    assert public and private is None


# -- SSH -----------------------------------------------------------------------------------------
SSH = "timeout 30 ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5"


def test_key_login_as_deploy_works_and_sudo_is_passwordless(no_bans):
    out = host("outside").run(f"{SSH} deploy@node1 sudo -n id -u")
    assert out.rc == 0 and out.stdout.strip() == "0", out.stderr


def test_root_login_is_refused_even_with_an_authorized_key(no_bans):
    out = host("outside").run(f"{SSH} root@node1 true")
    assert out.rc == 255 and "Permission denied" in out.stderr


def _server_proposal(stderr):
    """The algorithms the server offered, from `ssh -vv`'s "peer server KEXINIT proposal"."""
    lines = stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if "peer server KEXINIT proposal" in line)
    found = {}
    for line in lines[start + 1:start + 12]:
        m = re.match(r"debug2: (KEX algorithms|host key algorithms|ciphers ctos|MACs ctos): (.*)", line)
        if m:
            found[m.group(1)] = set(m.group(2).split(","))
    return found


WEAK = ("sha1", "cbc", "md5", "nistp", "group1-", "group14", "arcfour", "3des", "umac-64")


def test_sshd_offers_only_modern_algorithms(no_bans):
    """What an ssh-audit scan checks: the key exchanges, host keys, ciphers and MACs the server offers."""
    out = host("outside").run(f"{SSH} -vv deploy@node1 true")
    offered = _server_proposal(out.stderr)
    assert set(offered) == {"KEX algorithms", "host key algorithms", "ciphers ctos", "MACs ctos"}, out.stderr[-2000:]
    for kind, algorithms in offered.items():
        weak = {a for a in algorithms if any(w in a for w in WEAK) and not a.startswith("kex-strict")}
        assert not weak, f"{kind}: {sorted(weak)}"
    assert offered["MACs ctos"] <= {"hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com",
                                    "umac-128-etm@openssh.com"}
    assert offered["ciphers ctos"] <= {"chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com",
                                       "aes128-gcm@openssh.com", "aes256-ctr", "aes192-ctr", "aes128-ctr"}
    assert "curve25519-sha256" in offered["KEX algorithms"]
    # An old client that only speaks a weak key exchange gets nowhere.
    old = host("outside").run(f"{SSH} -o KexAlgorithms=diffie-hellman-group14-sha1 deploy@node1 true")
    assert old.rc == 255 and "no matching key exchange method" in old.stderr


def test_max_auth_tries_is_enforced(no_bans):
    """Four wrong keys: the server hangs up after the third (MaxAuthTries 3)."""
    outside = host("outside")
    outside.check_output("rm -rf /run/wrong-keys && mkdir /run/wrong-keys && for i in 1 2 3 4; do "
                         "ssh-keygen -q -t ed25519 -N '' -f /run/wrong-keys/k$i; done")
    keys = " ".join(f"-i /run/wrong-keys/k{i}" for i in range(1, 5))
    out = outside.run(f"{SSH} -o IdentitiesOnly=yes {keys} -vv deploy@node1 true")
    assert out.rc == 255
    assert "Too many authentication failures" in out.stderr, out.stderr[-2000:]
    assert out.stderr.count("Offering public key") == 3


def test_sshd_policy_is_in_force(node1):
    effective = set(node1.check_output("/usr/sbin/sshd -T -C user=deploy,host=outside,addr=192.0.2.1").splitlines())
    for line in ("allowtcpforwarding no", "allowagentforwarding no", "x11forwarding no", "permittunnel no",
                 "allowstreamlocalforwarding no", "loglevel VERBOSE", "maxstartups 10:30:60", "maxauthtries 3",
                 "allowusers deploy", "permitrootlogin no"):
        assert line in effective, line
    small = node1.check_output(r"awk '!/^#/ && $5 < 3071' /etc/ssh/moduli | wc -l")
    assert small.strip() == "0"


def test_password_logins_are_not_offered(no_bans):
    out = host("outside").run(
        f"{SSH} -o PubkeyAuthentication=no -o PreferredAuthentications=password,keyboard-interactive deploy@node1 true")
    assert out.rc == 255 and "Permission denied (publickey)" in out.stderr


# -- changing the admin CIDR ---------------------------------------------------------------------
# A new SSH connection every 0.2 s from an address in the old admin CIDR and one in the new, while
# the role switches the CIDR; node1 records when each rule is in its live chain. ufw always lets
# established connections through, so only new ones tell whether SSH is open.
PROBE = r"""
import json, os, socket, sys, threading, time
sources, target, ports = sys.argv[1].split(","), sys.argv[2], [int(p) for p in sys.argv[3].split(",")]
stop, log = sys.argv[4], sys.argv[5]
lock, out = threading.Lock(), open(log, "a", buffering=1)
def attempt(src, port, tick):
    start, result = time.time(), "dropped"
    s = socket.socket(); s.bind((src, 0))
    try:
        s.settimeout(0.9)  # under the 1 s SYN retransmit: a dropped SYN is not retried
        s.connect((target, port))
        result = "no banner"; s.settimeout(3)
        if s.recv(64).startswith(b"SSH-"):
            result = "ok"
    except socket.timeout:
        pass
    except OSError as exc:
        result = type(exc).__name__
    finally:
        s.close()
    with lock:
        out.write(json.dumps({"src": src, "port": port, "tick": tick, "start": start, "end": time.time(),
                              "result": result}) + "\n")
tick, due = 0, time.time()
while not os.path.exists(stop):
    for src in sources:
        for port in ports:
            threading.Thread(target=attempt, args=(src, port, tick)).start()
    tick, due = tick + 1, due + 0.2
    time.sleep(max(0.0, due - time.time()))
"""
RULE_POLL = r"""
import json, os, subprocess, sys, time
old, new, stop, log = sys.argv[1:5]
out = open(log, "a", buffering=1)
while not os.path.exists(stop):
    start = time.time()
    chain = subprocess.run(["iptables", "-w", "-S", "ufw-user-input"], capture_output=True, text=True).stdout.splitlines()
    has = {ip: any(f"-s {ip}/32 " in line and "--dport 22 " in line for line in chain) for ip in (old, new)}
    out.write(json.dumps({"start": start, "end": time.time(), "old": has[old], "new": has[new]}) + "\n")
    time.sleep(0.02)  # a ufw command takes longer than a poll: a gap between two is seen
"""


def _background(h, name, script, *args):
    """Run ``script`` on ``h`` as a transient unit until /run/<name>.stop exists; returns its log path."""
    h.run(f"systemctl stop {name}; systemctl reset-failed {name}; rm -f /run/{name}.stop /run/{name}.log")
    h.check_output("cat > /run/%s.py <<'PY'\n%s\nPY" % (name, script))
    h.check_output(f"systemd-run --unit={name} /usr/bin/python3 /run/{name}.py "
                   + " ".join(args) + f" /run/{name}.stop /run/{name}.log")
    return f"/run/{name}.log"


def _records(h, path):
    return [json.loads(line) for line in h.check_output(f"cat {path}").splitlines()]


def _wait_stopped(h, name):
    h.check_output(f"touch /run/{name}.stop")
    for _ in range(60):
        if h.run(f"systemctl is-active {name}").stdout.strip() != "active":
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} did not stop")


def _task_result(doc, task_name, host_name):
    return next(task["hosts"][host_name] for play in doc["plays"] for task in play["tasks"]
                if task["task"]["name"].endswith(task_name) and host_name in task["hosts"])


def test_changing_the_admin_cidr_never_leaves_ssh_shut(node1, no_bans, record_testsuite_property):
    outside = host("outside")
    iface = ipaddress.ip_interface(outside.check_output("ip -4 -o addr show eth0 | awk '{print $4; exit}'"))
    old, new = str(iface.ip), str(iface.network.broadcast_address - 1)  # Docker hands out addresses from the bottom
    limit = ("--limit", "node1", "--tags", "firewall")
    outside.check_output(f"ip addr add {new}/{iface.network.prefixlen} dev eth0")
    try:
        rc, doc = converge("-e", json.dumps({"base_hardening_admin_cidrs": [f"{old}/32"]}), *limit)
        assert rc == 0, failure_messages(doc) or doc
        # The sshd jail's aggressive mode counts every pre-auth disconnect, which each probe is; a
        # ban earlier tests' failed logins may still bring is lifted once they are ignored.
        node1.check_output(f"fail2ban-client set sshd addignoreip {new}")
        node1.check_output(f"fail2ban-client unban {old} {new}")
        rules_log = _background(node1, "cidr-rules", RULE_POLL, old, new)
        probe_log = _background(outside, "cidr-probe", PROBE, f"{old},{new}", "node1", "22")
        time.sleep(1.5)
        before = {a["src"]: a["result"] for a in _records(outside, probe_log)}  # the latest of each
        assert before == {old: "ok", new: "dropped"}, f"before the switch: {before}"
        started = time.time()
        rc, doc = converge("-e", json.dumps({"base_hardening_admin_cidrs": [f"{new}/32"]}), *limit)
        finished = time.time()
        assert rc == 0, failure_messages(doc) or doc
        time.sleep(1.5)
        _wait_stopped(outside, "cidr-probe")
        _wait_stopped(node1, "cidr-rules")
        polls, attempts = _records(node1, rules_log), _records(outside, probe_log)
    finally:
        outside.run("systemctl stop cidr-probe; systemctl reset-failed cidr-probe")
        node1.run("systemctl stop cidr-rules; systemctl reset-failed cidr-rules")
        outside.run(f"ip addr del {new}/{iface.network.prefixlen} dev eth0")
        node1.run(f"fail2ban-client set sshd delignoreip {new}")  # `old` is outside's own: no_bans keeps it
        rc, doc_back = converge(*limit)
        assert rc == 0, failure_messages(doc_back) or doc_back

    # Through the role, by ufw_rules: the new rule added, the old one deleted, in one task.
    task = _task_result(doc, "Node firewall rules (exactly these)", "node1")
    # (SSH and, with api_public, 6443 follow the admin CIDRs: one rule each.)
    assert task["added"] and all(new in r and old not in r for r in task["added"]), task
    assert task["deleted"] and all(old in r and new not in r for r in task["deleted"]), task
    assert any(" port 22 " in f"{r} " for r in task["added"]), task

    # When each rule was in the live chain (each poll saw the chain at some instant in [start, end]).
    polls.sort(key=lambda p: p["start"])
    states = [(p["old"], p["new"]) for p in polls]
    assert states[0] == (True, False) and states[-1] == (False, True), states
    first_new = next(i for i, p in enumerate(polls) if p["new"])
    first_gone = next(i for i, p in enumerate(polls) if not p["old"])
    assert all(p["new"] for p in polls[first_new:]) and not any(p["old"] for p in polls[first_gone:]), states
    new_before, new_from = polls[first_new - 1]["start"], polls[first_new]["end"]  # new rule came in between
    old_until, old_after = polls[first_gone - 1]["start"], polls[first_gone]["end"]  # old rule went in between
    ticks = {}
    for a in attempts:
        ticks.setdefault(a["tick"], []).append(a)
    shut = {t: round(min(a["start"] for a in tries) - started, 2) for t, tries in ticks.items()
            if all(a["result"] != "ok" for a in tries)}
    timings = dict(
        converge_s=round(finished - started, 2),
        new_rule_live_after_s=round(new_from - started, 2),
        old_rule_gone_after_s=round(old_after - started, 2),
        both_rules_live_s=round(old_until - new_from, 2),  # negative: a gap with neither
        ticks=len(ticks), attempts=len(attempts),
        ticks_both_open=sum(all(a["result"] == "ok" for a in tries) for tries in ticks.values()),
        ticks_shut=len(shut),
    )
    print("admin CIDR switch:", json.dumps(timings))

    by_src = {src: sorted((a for a in attempts if a["src"] == src), key=lambda a: a["start"]) for src in (old, new)}
    assert by_src[old][0]["start"] < new_before - 1 and by_src[old][-1]["start"] > old_after + 1, "probes cover the switch"
    # The new CIDR gets in from the moment its rule exists, not before; the old one until its rule is gone.
    assert all(a["result"] == "ok" for a in by_src[new] if a["start"] >= new_from), by_src[new]
    assert all(a["result"] == "dropped" for a in by_src[new] if a["end"] <= new_before), by_src[new]
    assert all(a["result"] == "ok" for a in by_src[old] if a["start"] <= old_until), by_src[old]
    assert all(a["result"] == "dropped" for a in by_src[old] if a["start"] >= old_after), by_src[old]
    # Never a gap: at every tick a new connection from one side or the other got the SSH banner ...
    assert not shut, f"ticks where neither CIDR could connect (s after the converge started): {shut}; {timings}"
    # ... because the new rule was live before the old one went, and no poll saw neither.
    assert new_from <= old_until and (False, False) not in states, f"a moment with neither SSH rule: {timings}"
    record_testsuite_property("admin_cidr_switch", json.dumps(timings))


# -- moving the SSH port -------------------------------------------------------------------------
# The converge play as an operator runs it: over SSH as the deploy user, Ansible connecting on the
# port sshd listens on now, the policy's port set to another. Meanwhile `outside` keeps an SSH
# session open and tries a new connection to the old and the new port every 0.2 s.
NEW_SSH_PORT = 2222


def _converge_over_ssh(tmp_path, address, port_now, port_to, **extra):
    inventory = tmp_path / f"ssh-{port_now}.yml"
    inventory.write_text(json.dumps({"k3s_servers": {"hosts": {"node1": {
        "ansible_host": address, "ansible_port": port_now, "ansible_user": "deploy", "ansible_become": True,
        "ansible_connection": "ssh", "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_private_key_file": os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "operator_ed25519"),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes",
    }}}}))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(["ansible-playbook", "-i", str(inventory), os.path.join(SCENARIO, "converge.yml"),
                           "-e", json.dumps({"base_hardening_ssh_port": port_to, **extra})],
                          capture_output=True, text=True, env=env, timeout=600)
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        doc = {"raw": proc.stdout[-4000:] + proc.stderr[-2000:]}
    return proc.returncode, doc


def _listening_ports(node):
    return sorted(int(line.split()[1]) for line in
                  node.check_output("/usr/sbin/sshd -T -C user=deploy,host=x,addr=192.0.2.1 | grep '^port '").splitlines())


def _ufw_ssh_ports(node):
    """The ports of ufw's SSH rules (`ufw allow 22/tcp ...` or `... to any port 22 proto tcp ...`)."""
    found = set()
    for line in node.check_output("ufw show added").splitlines():
        if "ssh from admins" in line:
            m = re.search(r"(?:port |^ufw allow )([\d,:]+)(?:/tcp| proto tcp)", line)
            assert m, line
            found.update(m.group(1).split(","))
    return found


def test_moving_the_ssh_port_never_shuts_ssh(node1, no_bans, tmp_path, record_testsuite_property):
    outside = host("outside")
    outside_ip = outside.interface("eth0").addresses[0]
    public = addresses(node1)[0]
    node1.run("rm -f /tmp/end-session")
    session = (f"{SSH.replace('timeout 30 ', '')} deploy@node1 "
               "'while [ ! -e /tmp/end-session ]; do echo tick; sleep 1; done; echo session-end'")
    outside.run("systemctl stop ssh-session; systemctl reset-failed ssh-session")
    outside.check_output(f"systemd-run --unit=ssh-session --property=StandardOutput=file:/run/ssh-session.log "
                         f"bash -c \"{session}\"")
    moved = False
    try:
        probe_log = _background(outside, "port-probe", PROBE, outside_ip, "node1", f"22,{NEW_SSH_PORT}")
        time.sleep(1.5)
        before = {a["port"]: a["result"] for a in _records(outside, probe_log)}
        assert before == {22: "ok", NEW_SSH_PORT: "dropped"}, f"before the move: {before}"
        started = time.time()
        # The jail follows SSH to the new port and restarts, forgetting no_bans' runtime ignore entry:
        # `outside`'s probes (each a pre-auth disconnect) stay ignored through the configuration.
        rc, doc = _converge_over_ssh(tmp_path, public, 22, NEW_SSH_PORT, base_hardening_fail2ban_ignoreip=[outside_ip])
        finished = time.time()
        assert rc == 0, failure_messages(doc) or doc
        moved = True
        time.sleep(1.5)
        _wait_stopped(outside, "port-probe")
        attempts = _records(outside, probe_log)
        # Ansible itself moved: it reconnected on the new port and finished the play there.
        switch = _task_result(doc, "Ansible connects on the new port from now on", "node1")
        assert not switch.get("skipped") and switch["ansible_facts"]["ansible_port"] == NEW_SSH_PORT, switch
        assert _listening_ports(node1) == [NEW_SSH_PORT]
        assert _ufw_ssh_ports(node1) == {str(NEW_SSH_PORT)}
        # The session opened before the move is still there.
        node1.check_output("touch /tmp/end-session")
        for _ in range(50):
            if outside.run("systemctl is-active ssh-session").stdout.strip() != "active":
                break
            time.sleep(0.2)
        log = outside.check_output("cat /run/ssh-session.log")
        assert log.rstrip().endswith("session-end") and log.count("tick") >= int(finished - started), log[-500:]
    finally:
        outside.run("systemctl stop port-probe ssh-session; systemctl reset-failed port-probe ssh-session")
        if moved:
            rc, doc_back = _converge_over_ssh(tmp_path, public, NEW_SSH_PORT, 22)
        if not moved or rc != 0:
            rc, doc_back = converge("--limit", "node1")  # through Docker, whatever SSH's state
        assert rc == 0, failure_messages(doc_back) or doc_back
    assert _listening_ports(node1) == [22] and _ufw_ssh_ports(node1) == {"22"}
    assert tcp_probe(outside, "node1", 22) == "open" and tcp_probe(outside, "node1", NEW_SSH_PORT) == "dropped"

    ticks = {}
    for a in attempts:
        ticks.setdefault(a["tick"], {})[a["port"]] = a
    shut = sorted(round(min(a["start"] for a in t.values()) - started, 2) for t in ticks.values()
                  if all(a["result"] != "ok" for a in t.values()))
    by_port = {p: sorted((a for a in attempts if a["port"] == p), key=lambda a: a["start"]) for p in (22, NEW_SSH_PORT)}
    timings = dict(converge_s=round(finished - started, 2), ticks=len(ticks),
                   ticks_both_open=sum(all(a["result"] == "ok" for a in t.values()) for t in ticks.values()),
                   ticks_shut=len(shut))
    print("ssh port move:", json.dumps(timings))
    assert by_port[22][-1]["result"] == "dropped" and by_port[NEW_SSH_PORT][-1]["result"] == "ok", timings
    assert timings["ticks_both_open"] > 0, f"the new port never answered while the old one did: {timings}"
    assert not shut, f"ticks where neither port let a new connection in (s after the converge started): {shut}"
    record_testsuite_property("ssh_port_move", json.dumps(timings))


# -- the node itself -----------------------------------------------------------------------------
def test_network_sysctls_are_live(node1):
    assert node1.sysctl("net.ipv4.ip_forward") == 1
    assert node1.sysctl("net.ipv4.tcp_syncookies") == 1
    assert node1.sysctl("net.ipv4.conf.all.rp_filter") == 2
    # Low ports stay privileged: no process on the host but root (or one holding NET_BIND_SERVICE,
    # as Traefik does) binds :22, :80 or :443.
    assert node1.sysctl("net.ipv4.ip_unprivileged_port_start") == 1024
    bind = node1.run("setpriv --reuid=nobody --regid=nogroup --clear-groups python3 -c "
                     "'import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 81)); print(\"bound\")'")
    assert bind.stdout.strip() != "bound" and "Permission denied" in bind.stderr


def test_ufw_starting_again_keeps_the_roles_sysctls(node1):
    """ufw applies a sysctl file whenever it starts (every boot); it is the role's, not ufw's own
    (which sets strict rp_filter, breaking Flannel's asymmetric routes)."""
    assert node1.file("/etc/default/ufw").contains("^IPT_SYSCTL=/etc/sysctl.d/60-honeydue-net.conf$")
    node1.check_output("ufw --force disable && ufw --force enable")
    assert node1.sysctl("net.ipv4.conf.all.rp_filter") == 2
    assert "Status: active" in node1.check_output("ufw status")


def test_check_mode_works_on_a_host_not_hardened_yet(tmp_path):
    """`outside` never ran the role: --check against it succeeds and changes nothing."""
    play = tmp_path / "check.yml"
    play.write_text(json.dumps([{"hosts": "outside", "vars": {"base_hardening_authorized_keys": [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGz5p4ShwQh3Jc3m6Ot6gYb7mv5l+3Ww0T5fJ9j1k4bF ops@lab"],
        "base_hardening_sysctl_apply_global": False}, "roles": ["honeydue.infra.base_hardening"]}]))
    outside = host("outside")
    before = outside.check_output("ls /etc/ssh/sshd_config.d/ /etc/sysctl.d/; ufw status; id deploy 2>&1 || true")
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(["ansible-playbook", "-i", INVENTORY, str(play), "--check"], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert json.loads(proc.stdout)["stats"]["outside"]["changed"] > 0  # it did plan changes
    assert outside.check_output("ls /etc/ssh/sshd_config.d/ /etc/sysctl.d/; ufw status; id deploy 2>&1 || true") == before


def test_kernel_wide_sysctls_are_written_not_loaded_in_the_lab(node1):
    conf = node1.file("/etc/sysctl.d/60-honeydue-kernel.conf")
    assert conf.contains("^vm.overcommit_memory=1$") and conf.contains("^kernel.panic_on_oops=1$")


def test_fail2ban_bans_an_address_after_repeated_failed_logins(node1, fresh_jail):
    outside = host("outside")
    assert tcp_probe(outside, "node1", 22) == "open"
    for _ in range(6):  # base_hardening_fail2ban_maxretry is 5
        outside.run(f"{SSH} root@node1 true")
    time.sleep(2)
    banned = node1.check_output("fail2ban-client get sshd banned")
    assert outside.interface("eth0").addresses[0] in banned
    assert tcp_probe(outside, "node1", 22) == "refused"
    # The private subnet (the cluster's nodes) is on the ignore list: node2 is never locked out of node1.
    assert str(PRIVATE_NET) in node1.check_output("fail2ban-client get sshd ignoreip")


def test_unattended_upgrades_never_reboot(node1):
    dump = node1.check_output("apt-config dump Unattended-Upgrade::Automatic-Reboot")
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in dump
    assert node1.service("apt-daily-upgrade.timer").is_enabled


def test_time_sync_is_enabled(node1):
    assert node1.service("systemd-timesyncd").is_enabled


def test_ufw_is_on_with_default_deny(node1):
    status = node1.check_output("ufw status verbose")
    assert "Status: active" in status and "deny (incoming)" in status


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("extra,message", [
    ({"base_hardening_admin_cidrs": ["10.0.0.1/8"]}, "10.0.0.1/8"),
    ({"base_hardening_ssh_port": "twenty-two"}, "base_hardening_ssh_port"),
    ({"base_hardening_authorized_keys": []}, "base_hardening_authorized_keys must list"),
])
def test_bad_input_fails_before_any_change(node1, extra, message):
    before = node1.check_output("ufw show added; md5sum /etc/ssh/sshd_config.d/* /etc/sudoers.d/*")
    rc, doc = converge("-e", json.dumps(extra), "--limit", "node1")
    assert rc != 0
    assert any(message in m for m in failure_messages(doc)), failure_messages(doc) or doc
    assert doc["stats"]["node1"]["changed"] == 0
    assert node1.check_output("ufw show added; md5sum /etc/ssh/sshd_config.d/* /etc/sudoers.d/*") == before
