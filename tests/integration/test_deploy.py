"""deploy.yml and the app's secret rotation for real: the honeydue_app role against the Kubernetes
stand-in whose pods are processes on three netns-nodes, pulled from a real registry (token auth),
probed for real and reached through Traefik on every node, as a user's request arrives."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from _minilab_world import PULL_PASSWORD, PULL_USER, missing_root_tools, through_traefik, wait_for, world
from lab.registry.images import LABEL_FAIL_PATHS, LABEL_READY_AFTER

TOKEN = "deploy-token"
DOMAIN = "example.test"
NS = "honeydue"
GOOD, NEXT, BROKEN, ABSENT = "a1b2c3d", "b2c3d4e5f60718293a4b5c6d7e8f901234567890", "c3d4e5f", "d4e5f6a"
READY = {LABEL_READY_AFTER: "2"}
SECRETS = {"vault_honeydue_database_url": "postgres://app:neon-pw-7Q2@ep-x.neon.tech/honeydue",
           "vault_honeydue_redis_password": "redis-pw-old-9Xk", "vault_honeydue_secret_key": "secret-key-old-4Lm",
           "vault_honeydue_jwt_secret": "jwt-old-8Zp", "vault_honeydue_b2_key_id": "b2-key-id-3Fq",
           "vault_honeydue_b2_application_key": "b2-app-key-6Wr", "vault_honeydue_smtp_username": "smtp-user@x",
           "vault_honeydue_smtp_password": "smtp-pw-2Hd"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[dict[str, Any]]:
    reason = missing_root_tools()
    if reason:
        pytest.fail(reason)  # CI installs everything: a missing tool is a defect, not a skip
    images: dict[tuple[str, str], dict[str, str]] = {("library/redis", "7-alpine"): {}}
    for repo in ("api", "admin", "worker"):
        images[(f"honeydue/{repo}", GOOD)] = READY
        images[(f"honeydue/{repo}", NEXT[:7])] = READY
        images[(f"honeydue/{repo}", BROKEN)] = {LABEL_FAIL_PATHS: "/api/health/"} if repo == "api" else READY
    tmp = tmp_path_factory.mktemp("deploy")
    with world(tmp, "hddp", images, TOKEN) as cluster:
        cluster["api"].deadline_factor = 1.0  # real progress deadlines: the kubelets are real
        registry = cluster["registry"].host
        inventory = {"all": {"hosts": {"localhost": {"ansible_connection": "local"}}, "vars": {
            "honeydue_domain": DOMAIN, "honeydue_kubeconfig": str(cluster["kubeconfig"]),
            "honeydue_app_registry": registry, "honeydue_app_registry_insecure": True,
            "honeydue_app_redis_image": f"{registry}/library/redis:7-alpine",
            "vault_honeydue_registry_username": PULL_USER, "vault_honeydue_registry_password": PULL_PASSWORD,
            "honeydue_app_probe_period": 1, "honeydue_app_api_startup_failure_threshold": 15,
            "honeydue_app_admin_startup_failure_threshold": 15, "honeydue_app_progress_deadline": 60,
            "honeydue_app_rollout_timeout": 120, "honeydue_app_rollout_poll": 1,
            **SECRETS}}}
        cluster["inventory"] = tmp / "inventory.yml"
        cluster["inventory"].write_text(yaml.safe_dump(inventory))
        from conftest import run_playbook
        # Traefik as the ingress stage leaves it (role traefik_hostnet), before anything else.
        run = run_playbook(tmp, "playbooks/ingress.yml", inventory=str(cluster["inventory"]),
                           extra_args=["-e", "traefik_hostnet_wait_delay=1"])
        assert run.rc == 0, run.stdout[-3000:]
        yield cluster


def _deploy(cluster, playbook, sha: str | None, *args: str, path: str = "deploy.yml"):
    extra = (["-e", f"sha={sha}"] if sha is not None else []) + list(args)
    return playbook(path, inventory=str(cluster["inventory"]), extra_args=extra, timeout=900)


def _get(cluster: dict[str, Any], path: str) -> dict[str, Any] | None:
    req = urllib.request.Request(cluster["api"].url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as answer:  # noqa: S310 - the stand-in
            return json.loads(answer.read())
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise


def _pods(cluster, component: str) -> list[dict[str, Any]]:
    sel = urllib.request.quote(f"app.kubernetes.io/component={component}")
    return _get(cluster, f"/api/v1/namespaces/{NS}/pods?labelSelector={sel}")["items"]


def _image_tag(obj: dict[str, Any]) -> str:
    return obj["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[1]


def _failure(run, cluster: dict[str, Any] | None = None) -> str:
    pods = ""
    if cluster is not None:
        for p in (_get(cluster, f"/api/v1/namespaces/{NS}/pods") or {"items": []})["items"]:
            pods += f"\n{p['metadata']['name']} {json.dumps(p.get('status', {}).get('containerStatuses'))[:700]}"
    return json.dumps(run.result)[-3000:] + run.stderr[-2000:] + pods


class Poller:
    """A client on every node asking api.<domain> through Traefik, and a watcher counting worker pods."""

    def __init__(self, cluster: dict[str, Any]) -> None:
        self.cluster, self.stop = cluster, threading.Event()
        self.failures: list[Any] = []
        self.images: set[str] = set()
        self.requests = 0
        self.schemes: set[str] = set()
        self.max_workers = 0
        self.timeline: list[str] = []  # the api pods as they changed (for a failure's message)
        self.threads = [threading.Thread(target=self._client, args=(i,)) for i in (1, 2, 3)]
        self.threads.append(threading.Thread(target=self._workers))

    def _client(self, i: int) -> None:
        """https://api.<domain>/api/health/ (and http, alternately) on node i's Traefik."""
        schemes = ("https", "http")
        while not self.stop.is_set():
            scheme = schemes[self.requests % 2]
            code, body = through_traefik(self.cluster["lab"].node_ip(i), "/api/health/", f"api.{DOMAIN}", scheme=scheme)
            self.requests += 1
            self.schemes.add(scheme)
            if code != 200:
                self.failures.append((i, scheme, code, str(body)[:200]))
            else:
                self.images.add(body["image"].rsplit(":", 1)[1])
            time.sleep(0.05)

    def _workers(self) -> None:
        while not self.stop.is_set():
            pods = [p for p in _pods(self.cluster, "worker") if p.get("status", {}).get("phase") != "Succeeded"]
            self.max_workers = max(self.max_workers, len(pods))
            api = [(p["metadata"]["name"][-5:], p["spec"].get("nodeName", "-")[-1:], p["status"].get("phase"),
                    "T" if p["metadata"].get("deletionTimestamp") else "",
                    [(c.get("ready"), c.get("restartCount"), list(c.get("state", {}))) for c in
                     p["status"].get("containerStatuses") or []]) for p in _pods(self.cluster, "api")]
            line = f"{time.strftime('%H:%M:%S')} {api}"
            if not self.timeline or self.timeline[-1].split(" ", 1)[1] != line.split(" ", 1)[1]:
                self.timeline.append(line)
            time.sleep(0.1)

    def __enter__(self) -> Poller:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


# -- before any change ----------------------------------------------------------------------------
@pytest.mark.parametrize("sha", ["XYZ", "abc12", "A1B2C3D", "a1b2c3d; rm -rf /", ""])
def test_a_malformed_sha_fails_first_and_changes_nothing(cluster, playbook, sha) -> None:
    run = _deploy(cluster, playbook, sha)
    assert run.rc != 0
    assert "needs -e sha=<git sha>" in json.dumps(run.result), _failure(run, cluster)
    assert _get(cluster, f"/api/v1/namespaces/{NS}") is None


def test_an_image_the_registry_lacks_is_refused_before_any_change(cluster, playbook) -> None:
    run = _deploy(cluster, playbook, ABSENT)
    assert run.rc != 0
    text = json.dumps(run.result)
    assert f"honeydue/api:{ABSENT}: missing" in text and "MANIFEST_UNKNOWN" in text, _failure(run, cluster)
    assert _get(cluster, f"/api/v1/namespaces/{NS}") is None
    assert PULL_PASSWORD not in run.stdout + run.stderr


# -- deploys --------------------------------------------------------------------------------------
def test_a_good_sha_rolls_every_workload_and_the_same_sha_again_changes_nothing(cluster, playbook) -> None:
    run = _deploy(cluster, playbook, GOOD)
    assert run.rc == 0, _failure(run, cluster)
    summary = run.task_results("honeydue.infra.honeydue_app : Deployed")["msg"]
    assert summary[0] == f"release - -> {GOOD} (namespace {NS})"
    assert f"Deployment/api: - -> {GOOD}, 3/3 ready" in summary and f"StatefulSet/worker: - -> {GOOD}, 1/1 ready" in summary
    api = _get(cluster, f"/apis/apps/v1/namespaces/{NS}/deployments/api")
    assert _image_tag(api) == GOOD and api["status"]["updatedReplicas"] == 3
    assert len({p["spec"]["nodeName"] for p in _pods(cluster, "api")}) == 3, "spread over the three nodes"
    assert _get(cluster, f"/api/v1/namespaces/{NS}/configmaps/honeydue-release")["data"]["sha"] == GOOD
    for i in (1, 2, 3):
        code, body = wait_for(f"api through node {i}", lambda i=i: (
            r := through_traefik(cluster["lab"].node_ip(i), "/api/health/", f"api.{DOMAIN}"))[0] == 200 and r, 20)
        assert body["image"].endswith(f"/honeydue/api:{GOOD}")
        code, body = wait_for(f"admin through node {i}", lambda i=i: (
            r := through_traefik(cluster["lab"].node_ip(i), "/", f"admin.{DOMAIN}"))[0] == 200 and r, 20)
        assert body["image"].endswith(f"/honeydue/admin:{GOOD}")
    again = _deploy(cluster, playbook, GOOD)
    assert again.rc == 0, _failure(again, cluster)
    assert again.changed() == 0, [t["task"]["name"] for p in again.result["plays"] for t in p["tasks"]
                                  if t["hosts"].get("localhost", {}).get("changed")]


def test_a_new_sha_rolls_with_no_failed_request_on_any_node_and_never_two_workers(cluster, playbook) -> None:
    with Poller(cluster) as poll:
        run = _deploy(cluster, playbook, NEXT)
        time.sleep(1.5)
    assert run.rc == 0, _failure(run, cluster)
    assert poll.failures == [], poll.failures[:5]
    assert poll.images == {GOOD, NEXT[:7]} and poll.requests > 50 and poll.schemes == {"https", "http"}
    assert poll.max_workers == 1, "the worker (Asynq scheduler) never runs twice"
    summary = run.task_results("honeydue.infra.honeydue_app : Deployed")["msg"]
    assert f"Deployment/api: {GOOD} -> {NEXT[:7]}, 3/3 ready" in summary, summary
    assert summary[0] == f"release {GOOD} -> {NEXT[:7]} (namespace {NS})"
    release = _get(cluster, f"/api/v1/namespaces/{NS}/configmaps/honeydue-release")["data"]
    assert release == {"sha": NEXT[:7], "previous": GOOD}


def test_an_image_that_fails_its_probes_is_rolled_back_while_the_old_pods_serve(cluster, playbook) -> None:
    before = _get(cluster, f"/apis/apps/v1/namespaces/{NS}/deployments/api")
    with Poller(cluster) as poll:
        run = _deploy(cluster, playbook, BROKEN)
        time.sleep(1.5)
    assert run.rc != 0
    text = json.dumps(run.result)
    assert 'deployment \\"api\\" exceeded its progress deadline' in text, _failure(run, cluster)
    assert "Rolled back: " in text and "Deployment/api" in text.split("Rolled back: ", 1)[1][:400], _failure(run, cluster)
    assert poll.failures == [] and poll.images == {NEXT[:7]}, (poll.failures[:5], poll.images)
    assert poll.max_workers == 1
    api = _get(cluster, f"/apis/apps/v1/namespaces/{NS}/deployments/api")
    assert _image_tag(api) == NEXT[:7] and api["spec"]["template"] == before["spec"]["template"]
    for name, kind in (("admin", "deployments"), ("worker", "statefulsets")):
        assert _image_tag(_get(cluster, f"/apis/apps/v1/namespaces/{NS}/{kind}/{name}")) == NEXT[:7], name
    assert {_image_tag({"spec": {"template": p}}) for p in _pods(cluster, "api")} == {NEXT[:7]}
    assert _get(cluster, f"/api/v1/namespaces/{NS}/configmaps/honeydue-release")["data"]["sha"] == NEXT[:7]


# -- rotation -------------------------------------------------------------------------------------
def test_rotation_puts_new_values_in_the_cluster_restarts_the_pods_and_prints_no_secret(cluster, playbook, tmp_path) -> None:
    vault_pass = tmp_path / "vault-pass"
    vault_pass.write_text("lab-vault-password\n")
    vault_pass.chmod(0o600)
    vault_file = tmp_path / "vault_app.yml"
    pods_before = {p["metadata"]["uid"] for c in ("api", "admin", "worker", "redis") for p in _pods(cluster, c)}
    with Poller(cluster) as poll:
        run = _deploy(cluster, playbook, None, "-vvv", "-e", f"honeydue_app_vault_file={vault_file}",
                      "-e", f"honeydue_app_vault_password_file={vault_pass}", path="playbooks/app-rotate-secrets.yml")
    assert run.rc == 0, _failure(run, cluster) + "\n" + "\n".join(poll.timeline[-80:])
    assert poll.failures == [] and poll.max_workers == 1, poll.failures[:5]
    assert vault_file.stat().st_mode & 0o777 == 0o600
    vault = VaultLib([("default", VaultSecret(b"lab-vault-password"))])
    loaded = yaml.load(vault_file.read_text(), Loader=_vault_loader())
    new = {k: vault.decrypt(v).decode() for k, v in loaded.items()}
    for key in ("vault_honeydue_redis_password", "vault_honeydue_secret_key", "vault_honeydue_jwt_secret"):
        assert new[key] != SECRETS[key] and len(new[key]) >= 48, key
    for key in ("vault_honeydue_database_url", "vault_honeydue_b2_application_key", "vault_honeydue_smtp_password"):
        assert new[key] == SECRETS[key], key
    import base64
    app = _get(cluster, f"/api/v1/namespaces/{NS}/secrets/honeydue-app")["data"]
    assert base64.b64decode(app["JWT_SECRET"]).decode() == new["vault_honeydue_jwt_secret"]
    conf = base64.b64decode(_get(cluster, f"/api/v1/namespaces/{NS}/secrets/honeydue-redis")["data"]["redis.conf"]).decode()
    assert f">{new['vault_honeydue_redis_password']} " in conf and SECRETS["vault_honeydue_redis_password"] not in conf
    assert "appendonly yes" in conf
    pods_after = {p["metadata"]["uid"] for c in ("api", "admin", "worker", "redis") for p in _pods(cluster, c)}
    assert not pods_before & pods_after, "every pod restarted"
    output = run.stdout + run.stderr
    secret = [v for k, v in {**SECRETS, **new}.items() if not k.endswith("_username")] + [PULL_PASSWORD]
    for value in secret:
        assert value not in output, "a secret in the -vvv output"


def _vault_loader():
    class Loader(yaml.SafeLoader):
        pass
    Loader.add_constructor("!vault", lambda loader, node: loader.construct_scalar(node).encode())
    return Loader


# -- origin TLS -----------------------------------------------------------------------------------
CF_TOKEN = "cf-switch-token"


def test_the_origin_tls_switch_from_flexible_to_full_strict_never_fails_a_request_through_the_edge(
        cluster, playbook, tmp_path) -> None:
    """Cloudflare (the stand-in's zone settings) in front, its edge (lab/edge.py: settings 2 s late, no
    retry on another origin, as on the Free plan) reaching Traefik on every node; HTTPS and HTTP
    visitors poll the api while the switch runs step by step."""
    from lab.edge import Edge, origin_ca, origin_certificate
    from lab.standins.cloudflare import CloudflareStandIn

    lab = cluster["lab"]
    cf = CloudflareStandIn(token=CF_TOKEN, zones=[DOMAIN], aop_deploy_seconds=0.5).start()
    ca = origin_ca()
    cert, key = origin_certificate(ca, [DOMAIN, f"*.{DOMAIN}"])
    edge = Edge(lambda: cf.zone_settings(DOMAIN), lambda host: [lab.node_ip(i) for i in (1, 2, 3)], zone=DOMAIN,
                origin_ca_pem=ca[0], lag=2.0, connect_timeout=3, response_timeout=15).start()
    edge_ca = tmp_path / "edge-ca.pem"
    edge_ca.write_text(edge.edge_ca_pem)
    failures: list[Any] = []
    seen: dict[str, set[int]] = {"https": set(), "http": set()}
    stop = threading.Event()

    def visitor(scheme: str) -> None:
        while not stop.is_set():
            try:
                answer = edge.request("GET", f"{scheme}://api.{DOMAIN}/api/health/", timeout=20)
                status = answer.status
            except OSError as err:
                status = f"no answer: {err}"
            seen[scheme].add(status)
            if status not in (200, 301):
                failures.append((scheme, status))
            time.sleep(0.05)

    visitors = [threading.Thread(target=visitor, args=(s,)) for s in ("https", "http", "https")]
    args = ["-e", json.dumps({
        "honeydue_origin_tls": "full_strict", "vault_honeydue_origin_cert": cert, "vault_honeydue_origin_key": key,
        "origin_tls_dir": str(tmp_path / "origin-tls"), "origin_tls_api_base_url": f"{cf.url}/client/v4",
        "origin_tls_check_url": f"{edge.https_url}/api/health/", "origin_tls_check_host": f"api.{DOMAIN}",
        "origin_tls_check_ca": str(edge_ca), "origin_tls_propagation_seconds": 3,
        "traefik_hostnet_wait_delay": 1})]
    env = {"CLOUDFLARE_API_TOKEN": CF_TOKEN}
    try:
        for v in visitors:
            v.start()
        run = playbook("playbooks/origin-tls-switch.yml", inventory=str(cluster["inventory"]), extra_args=args,
                       env=env, timeout=900)
        time.sleep(3)  # the last setting reaches the edge
    finally:
        stop.set()
        for v in visitors:
            v.join()
    try:
        assert run.rc == 0, _failure(run, cluster)
        assert failures == [], failures[:10]
        assert seen["https"] == {200} and seen["http"] == {200, 301}, seen
        settings = cf.zone_settings(DOMAIN)
        assert (settings["ssl"], settings["aop_enabled"], settings["always_use_https"]) == ("strict", True, "on")
        steps = [t["task"]["name"].split(" : ")[-1] for p in run.result["plays"] for t in p["tasks"]
                 if t["task"]["name"].split(" : ")[-1].startswith("The step held")]
        assert steps == ["The step held: the Origin certificate on Traefik", "The step held: zone SSL strict",
                         "The step held: zone-level AOP on", "The step held: client certificates required on Traefik",
                         "The step held: Always Use HTTPS"], steps
        # The origin now refuses TLS clients without the zone's client certificate.
        import ssl
        context = ssl.create_default_context(cadata=ca[0])
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            with socket.create_connection((lab.node_ip(1), 443), timeout=5) as raw:
                with context.wrap_socket(raw, server_hostname=f"api.{DOMAIN}") as tls:
                    tls.sendall(f"GET /api/health/ HTTP/1.1\r\nHost: api.{DOMAIN}\r\n\r\n".encode())
                    if not tls.recv(1):
                        raise ConnectionResetError("closed")
        again = playbook("playbooks/origin-tls-switch.yml", inventory=str(cluster["inventory"]), extra_args=args,
                         env=env, timeout=900)
        assert again.rc == 0 and again.changed() == 0, (again.stats, _failure(again, cluster))
    finally:
        edge.stop()
        cf.stop()
