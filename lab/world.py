"""The local lab's world (`make lab`): the vendors site.yml talks to, and the machines it creates.

    python -m lab.world up       # start it (idempotent: a running world is reused), print its endpoints
    python -m lab.world env      # the shell exports make lab runs site.yml with
    python -m lab.world check    # the user's request path: api health and admin root through the edge
    python -m lab.world down     # everything gone: daemon, node containers, edge, networks, .lab/

One background process (``serve``, pid in ``.lab/world.json``) holds, for as long as the lab lives:

* the Hetzner Cloud stand-in (``lab/standins/hcloud.py``) on 127.0.0.1, whose servers *are* lab node
  containers (``lab/machines.py``: public address = Primary IPv4 on the ``honeydue-lab`` network
  203.0.113.0/24, private networks as Docker networks, user_data through cloud-init's NoCloud);
* the Cloudflare stand-in on the public network's gateway (203.0.113.1), zone ``honeydue.example``:
  the controller writes records there, the edge and the DNS guards on the nodes read and write them;
* the private registry (Debian's docker-registry with token auth, as Gitea's) on 203.0.113.1:5000,
  holding lab images of api/admin/worker at the lab sha and redis:7-alpine;
* the K3s release mirror (``lab/k3s/build.py`` output, laid out as GitHub serves it) on 203.0.113.1.

And one container: ``honeydue-lab-edge`` at 203.0.113.5 (inside the lab's "Cloudflare ranges",
``honeydue_origin_cidrs`` of inventories/lab), running ``lab/edge_service.py``: Cloudflare's proxy,
resolving each host from the stand-in's records and following the zone's SSL settings.

Everything lives under ``.lab/`` (0700; ``LAB_DIR`` overrides): the lab's secrets (``secrets.yml``,
0600, known values the -vvv check looks for), the operator's SSH key, known_hosts, the seeds.
The world's state is in memory: if the process dies while nodes exist, ``up`` refuses (run
``make lab-down``) rather than provision a second fleet beside the first.
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

from lab.machines import LABEL, PUBLIC_NETWORK, PUBLIC_SUBNET, DockerMachines, docker, ensure_network

REPO = Path(__file__).resolve().parents[1]
GATEWAY = "203.0.113.1"
EDGE_IP = "203.0.113.5"
EDGE_CONTAINER = "honeydue-lab-edge"
ZONE = "honeydue.example"
HCLOUD_PORT, CLOUDFLARE_PORT, RELEASES_PORT, REGISTRY_PORT = 18181, 18182, 18183, 5000
REGISTRY_USER = "lab"
LAB_SHA = "1ab0c0ffee5eed0000000000000000000000abcd"
APP_REPOSITORIES = ("honeydue/api", "honeydue/admin", "honeydue/worker")


def lab_dir() -> Path:
    return Path(os.environ.get("LAB_DIR") or REPO / ".lab").resolve()


def say(line: str) -> None:
    print(f"lab: {line}", flush=True)


def _image() -> str:
    return os.environ.get("LAB_NODE_IMAGE") or "honeydue/lab-node:current"


# -- secrets and keys ------------------------------------------------------------------------------
def _secret(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def ensure_secrets(state: Path) -> dict[str, str]:
    """The lab's secrets (created once, kept across runs so a second run changes nothing)."""
    path = state / "secrets.yml"
    if path.exists():
        import yaml
        return yaml.safe_load(path.read_text())
    values = {
        "vault_hcloud_token": _secret("labhcloud"),
        "vault_cloudflare_api_token": _secret("labcloudflare"),
        "vault_k3s_token": _secret("labk3stoken"),
        "vault_registry_password": _secret("labregistry"),
        "vault_honeydue_registry_username": REGISTRY_USER,
        "vault_honeydue_registry_password": "",  # same as vault_registry_password (below)
        "vault_honeydue_database_url": f"postgres://honeydue:{_secret('labdbpass')}@db.lab.invalid/honeydue",
        "vault_honeydue_redis_password": _secret("labredis"),
        "vault_honeydue_secret_key": _secret("labsecretkey"),
        "vault_honeydue_jwt_secret": _secret("labjwt"),
        "vault_honeydue_b2_key_id": _secret("labb2id"),
        "vault_honeydue_b2_application_key": _secret("labb2key"),
        "vault_honeydue_smtp_username": "lab@honeydue.example",
        "vault_honeydue_smtp_password": _secret("labsmtp"),
    }
    values["vault_honeydue_registry_password"] = values["vault_registry_password"]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("---\n# The lab's secrets (make lab): known values, looked for in logs, files and command lines.\n")
        for key, value in values.items():
            fh.write(f"{key}: {json.dumps(value)}\n")
    return values


def ensure_ssh_key(state: Path) -> Path:
    key = state / "operator_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lab-operator", "-f", str(key)],
                       check=True)
    return key


# -- the world -------------------------------------------------------------------------------------
def _read_world(state: Path) -> dict[str, Any] | None:
    try:
        return json.loads((state / "world.json").read_text())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def endpoints() -> dict[str, str]:
    return {"hcloud": f"http://127.0.0.1:{HCLOUD_PORT}/v1",
            "cloudflare": f"http://{GATEWAY}:{CLOUDFLARE_PORT}/client/v4",
            "registry": f"{GATEWAY}:{REGISTRY_PORT}",
            "releases": f"http://{GATEWAY}:{RELEASES_PORT}",
            "edge": EDGE_IP}


def _node_containers() -> list[str]:
    return [n for n in docker("ps", "-a", "--format", "{{.Names}}", "--filter", f"label={LABEL}=true",
                              check=False).stdout.split() if n != EDGE_CONTAINER]


def up(args: argparse.Namespace) -> int:
    state = lab_dir()
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    state.chmod(0o700)
    world = _read_world(state)
    if world and _alive(world["pid"]) and _answers(endpoints()["hcloud"] + "/locations"):
        say(f"world running (pid {world['pid']}): reused")
    else:
        if _node_containers():
            say("lab nodes exist but the world that created them is gone (its state was in memory): "
                "run `make lab-down`, then `make lab`")
            return 1
        ensure_secrets(state)
        ensure_ssh_key(state)
        ensure_network(PUBLIC_NETWORK, PUBLIC_SUBNET)
        log = open(state / "world.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "lab.world", "serve"], cwd=REPO, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True, env={**os.environ, "LAB_DIR": str(state)})
        deadline = time.monotonic() + 300
        while not (state / "ready").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                say(f"the world did not start; its log ({state / 'world.log'}):")
                sys.stdout.write((state / "world.log").read_text(errors="replace")[-4000:])
                return 1
            time.sleep(0.3)
        say(f"world started (pid {proc.pid}; log {state / 'world.log'})")
    _ensure_edge(state)
    for name, url in endpoints().items():
        say(f"  {name:<10} {url}")
    return 0


def _ensure_edge(state: Path) -> None:
    """The edge container (Cloudflare's proxy) at EDGE_IP, running lab/edge_service.py."""
    running = docker("inspect", "-f", "{{.State.Running}}", EDGE_CONTAINER, check=False).stdout.strip()
    if running == "true":
        return
    docker("rm", "-f", EDGE_CONTAINER, check=False)
    values = ensure_secrets(state)
    conf = state / "edge"
    conf.mkdir(mode=0o700, exist_ok=True)
    path = conf / "edge.json"
    path.write_text(json.dumps({"cloudflare": endpoints()["cloudflare"], "token": values["vault_cloudflare_api_token"],
                                "zone": ZONE, "retry_other_origin": False}))
    path.chmod(0o600)
    docker("run", "-d", "--name", EDGE_CONTAINER, "--hostname", "edge", "--label", f"{LABEL}=true",
           "--network", PUBLIC_NETWORK, "--ip", EDGE_IP, "-v", f"{REPO}:/opt/honeydue:ro",
           "-v", f"{conf}:/etc/lab-edge:ro", "-w", "/opt/honeydue", "-e", "PYTHONDONTWRITEBYTECODE=1",
           _image(), "python3", "-m", "lab.edge_service", "--config", "/etc/lab-edge/edge.json")
    say(f"edge container {EDGE_CONTAINER} at {EDGE_IP} (the lab's Cloudflare proxy)")


def serve(args: argparse.Namespace) -> int:
    """The world's process: the stand-ins and the registry, until SIGTERM."""
    from lab.registry.images import build_image, push
    from lab.registry.server import LabRegistry
    from lab.standins.cloudflare import CloudflareStandIn
    from lab.standins.hcloud import HcloudStandIn

    state = lab_dir()
    values = ensure_secrets(state)
    (state / "ready").unlink(missing_ok=True)

    hcloud = HcloudStandIn(token=values["vault_hcloud_token"], port=HCLOUD_PORT)
    hcloud.machines = DockerMachines(_image(), state / "seed")
    hcloud.start()
    cloudflare = CloudflareStandIn(token=values["vault_cloudflare_api_token"], port=CLOUDFLARE_PORT, zones=[ZONE])
    cloudflare.bind = GATEWAY
    cloudflare.start()

    releases = state / "releases"
    subprocess.run([sys.executable, "-m", "lab.k3s.build", "--clean", "--out", str(releases)], cwd=REPO, check=True)
    mirror = http.server.ThreadingHTTPServer((GATEWAY, RELEASES_PORT),
                                             partial(_QuietFiles, directory=str(releases)))
    threading.Thread(target=mirror.serve_forever, daemon=True, name="releases").start()

    registry = LabRegistry("token", {REGISTRY_USER: values["vault_registry_password"]},
                           addr=f"{GATEWAY}:{REGISTRY_PORT}").start()
    tag = LAB_SHA[:7]
    images = state / "images"
    app = build_image(images / "app", "app", {"lab.honeydue/ready-after": "1"})
    for repository in APP_REPOSITORIES:
        push(app, registry.host, repository, REGISTRY_USER, values["vault_registry_password"], tag=tag)
    redis = build_image(images / "redis", "redis", {})
    push(redis, registry.host, "library/redis", REGISTRY_USER, values["vault_registry_password"], tag="7-alpine")

    (state / "world.json").write_text(json.dumps({"pid": os.getpid(), **endpoints(), "sha": LAB_SHA}))
    (state / "ready").write_text("ready\n")
    print(f"lab world ready: {json.dumps(endpoints())}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    registry.stop()
    mirror.shutdown()
    cloudflare.stop()
    hcloud.stop()
    return 0


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's signature
        pass


def env(args: argparse.Namespace) -> int:
    """Shell exports for site.yml against the lab (tokens come from .lab/secrets.yml, never from here)."""
    ep = endpoints()
    state = lab_dir()
    print(f"export LAB_DIR={state}")
    print(f"export HCLOUD_ENDPOINT={ep['hcloud']}")
    print(f"export LAB_CLOUDFLARE_URL={ep['cloudflare']}")
    print(f"export LAB_SHA={LAB_SHA}")
    # The inventory plugin reads its token from the environment only (never a command line).
    print(f"export HCLOUD_TOKEN={ensure_secrets(state)['vault_hcloud_token']}")
    return 0


def check(args: argparse.Namespace) -> int:
    """The user's request path: GET http://api.<zone>/api/health/, http://admin.<zone>/ and the apex through the edge."""
    failures = 0
    for host, path in ((f"api.{ZONE}", "/api/health/"), (f"admin.{ZONE}", "/"), (ZONE, "/")):
        url = f"http://{EDGE_IP}{path}"
        req = urllib.request.Request(url, headers={"Host": host})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                body, status = resp.read(), resp.status
        except urllib.error.HTTPError as exc:
            body, status = exc.read(), exc.code
        except OSError as exc:
            say(f"http://{host}{path} -> no answer from the edge: {exc}")
            failures += 1
            continue
        who = ""
        try:
            data = json.loads(body)
            who = f" (pod {data.get('pod')} on {data.get('node')}, image {data.get('image')})"
        except ValueError:
            who = f" ({body[:80]!r})"
        say(f"http://{host}{path} through the edge -> {status}{who}")
        failures += host != ZONE and status != 200
    return 1 if failures else 0


def down(args: argparse.Namespace) -> int:
    state = lab_dir()
    world = _read_world(state)
    if world and _alive(world["pid"]):
        os.kill(world["pid"], signal.SIGTERM)
        for _ in range(50):
            if not _alive(world["pid"]):
                break
            time.sleep(0.1)
    DockerMachines(_image(), state / "seed").remove_all()
    if state.exists():
        subprocess.run(["rm", "-rf", str(state)], check=False)
    say("lab removed (world, nodes, edge, networks, .lab/)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.world", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("up", "serve", "env", "check", "down"):
        sub.add_parser(name)
    args = parser.parse_args(argv)
    socket.setdefaulttimeout(30)
    return {"up": up, "serve": serve, "env": env, "check": check, "down": down}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
