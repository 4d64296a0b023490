"""Pure parts of the lab kubelet: pod network commands, Traefik's flags, the pod status it writes."""
from __future__ import annotations

from lab.k3s import _kubeprobes as kp
from lab.k3s import _podnet
from lab.k3s._kubelet import StaticImages, PullError, traefik_entrypoints
from lab.k3s._podstatus import Pulled, container_status, pod_status, pull_failed, qos_class

import pytest


def test_pod_addresses_skip_the_gateway_and_used_ones() -> None:
    assert _podnet.gateway("10.42.1.0/24") == "10.42.1.1"
    assert _podnet.next_address("10.42.1.0/24", []) == "10.42.1.2"
    assert _podnet.next_address("10.42.1.0/24", ["10.42.1.2", "10.42.1.4"]) == "10.42.1.3"
    with pytest.raises(RuntimeError, match="full"):
        _podnet.next_address("10.42.1.0/30", ["10.42.1.2"])


def test_host_gw_routes_to_every_other_node_and_drop_stale_ones() -> None:
    cmds = _podnet.route_commands("10.42.0.0/24", {"10.42.0.0/24": "10.0.0.11", "10.42.1.0/24": "10.0.0.12",
                                                   "10.42.2.0/24": "10.0.0.13"},
                                  {"10.42.2.0/24": "10.0.0.13", "10.42.5.0/24": "10.0.0.99"})
    assert cmds == [["ip", "route", "replace", "10.42.1.0/24", "via", "10.0.0.12"],
                    ["ip", "route", "del", "10.42.5.0/24"]]


def test_pod_namespace_and_veth_names_fit_the_kernel_limits() -> None:
    uid = "0d7c8e4a-1b2c-4d5e-8f90-123456789abc"
    assert _podnet.netns_name(uid) == f"cni-{uid}"
    assert len(_podnet.veth_name(uid)) <= 15
    cmds = _podnet.pod_commands(uid, "10.42.1.7", "10.42.1.0/24")
    assert ["ip", "-n", f"cni-{uid}", "addr", "add", "10.42.1.7/24", "dev", "eth0"] in cmds
    assert cmds[-1] == ["ip", "-n", f"cni-{uid}", "route", "add", "default", "via", "10.42.1.1"]


def test_traefik_flags_give_entrypoints_forwarded_headers_and_tls() -> None:
    got = traefik_entrypoints(["--entryPoints.web.address=:80/tcp", "--entryPoints.websecure.address=:443/tcp",
                               "--entryPoints.web.forwardedHeaders.trustedIPs=173.245.48.0/20,103.21.244.0/22",
                               "--entryPoints.websecure.http.tls=true", "--entryPoints.metrics.address=:9100/tcp",
                               "--accesslog=true", "--providers.kubernetesingress"])
    assert got["access_log"] is True
    assert got["entrypoints"]["web"]["port"] == 80
    assert got["entrypoints"]["web"]["trusted_ips"] == ["173.245.48.0/20", "103.21.244.0/22"]
    assert "tls" in got["entrypoints"]["websecure"] and "tls" not in got["entrypoints"]["web"]
    assert traefik_entrypoints(["--entryPoints.web.address=:8000/tcp"])["access_log"] is False


def test_static_images_answer_like_containerd() -> None:
    images = StaticImages({"reg.lab/api:abc1234": {"lab.honeydue/ready-after": "1"}})
    assert images.resolve("reg.lab/api:abc1234", [])[0] == {"lab.honeydue/ready-after": "1"}
    assert images.resolve("rancher/mirrored-library-traefik:3.5.1", [])[0] == {}
    with pytest.raises(PullError, match='failed to pull and unpack image "reg.lab/api:nope"'):
        images.resolve("reg.lab/api:nope", [])


POD = {"metadata": {"name": "api-1", "namespace": "app", "uid": "u1"},
       "spec": {"containers": [{"name": "api", "image": "reg.lab/api:abc1234"}]}}


def test_pull_failure_then_backoff() -> None:
    p = pull_failed(Pulled("reg.lab/api:nope"), "failed to pull", now=100.0)
    first = container_status("api", None, p, POD, now=100.0)
    assert first["state"]["waiting"] == {"reason": "ErrImagePull", "message": "failed to pull"}
    p = pull_failed(p, "failed to pull", now=110.0)
    second = container_status("api", None, p, POD, now=111.0)
    assert second["state"]["waiting"] == {"reason": "ImagePullBackOff",
                                          "message": 'Back-off pulling image "reg.lab/api:nope"'}


def test_status_ready_conditions_and_crashloop_message() -> None:
    spec = {"readinessProbe": {"httpGet": {"path": "/", "port": 8000}}}
    c = kp.start(spec, 0.0)
    unready = container_status("api", c, Pulled("reg.lab/api:abc1234", ok=True, digest="sha256:ab"), POD, 1.0)
    status = pod_status(POD, [unready], pod_ip="10.42.1.2", host_ip="10.0.0.12", started=0.0, previous=None)
    ready = {x["type"]: x for x in status["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["message"] == "containers with unready status: [api]"
    assert status["podIP"] == "10.42.1.2" and status["phase"] == "Running"
    crashed = kp.stopped(kp.start({}, 0.0, kp.stopped(kp.start({}, 0.0), 1.0, "Error")), 2.0, "Error")
    waiting = container_status("api", crashed, Pulled("reg.lab/api:abc1234", ok=True), POD, 3.0, exit_code=2)
    assert waiting["state"]["waiting"]["message"] == "back-off 10s restarting failed container=api pod=api-1_app(u1)"
    assert waiting["lastState"]["terminated"]["exitCode"] == 2 and waiting["restartCount"] == 1


def test_qos_classes() -> None:
    def pod(res):
        return {"spec": {"containers": [{"name": "a", "resources": res}]}}
    assert qos_class(pod({})) == "BestEffort"
    assert qos_class(pod({"limits": {"cpu": "100m", "memory": "64Mi"}})) == "Guaranteed"
    assert qos_class(pod({"requests": {"cpu": "100m"}, "limits": {"cpu": "200m", "memory": "64Mi"}})) == "Burstable"


def test_prestop_hold_from_sleep_action_or_exec_sleep() -> None:
    from lab.k3s._kubelet import prestop_seconds
    assert prestop_seconds({"lifecycle": {"preStop": {"sleep": {"seconds": 5}}}}) == 5
    assert prestop_seconds({"lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 3"]}}}}) == 3
    assert prestop_seconds({"lifecycle": {"preStop": {"exec": {"command": ["sleep", "2"]}}}}) == 2
    assert prestop_seconds({"lifecycle": {"preStop": {"exec": {"command": ["nginx", "-s", "quit"]}}}}) == 0
    assert prestop_seconds({}) == 0


def test_pulls_go_to_the_mirror_endpoints_first_then_the_registry_itself() -> None:
    from lab.k3s._kubelet import pull_endpoints

    regs = {"mirrors": {"registry.lab:5000": {"endpoint": ["http://10.79.0.1:5055", "https://cache.lab"]},
                        "*": {"endpoint": ["http://proxy.lab:80"]}}}
    assert pull_endpoints(regs, "registry.lab:5000") == [("10.79.0.1:5055", True), ("cache.lab", False),
                                                          ("registry.lab:5000", False)]
    assert pull_endpoints(regs, "docker.io") == [("proxy.lab:80", True), ("docker.io", False)]
    assert pull_endpoints({}, "git.example.com") == [("git.example.com", False)], "HTTPS unless a mirror says otherwise"
    same = {"mirrors": {"10.0.0.1:5000": {"endpoint": ["http://10.0.0.1:5000"]}}}
    assert pull_endpoints(same, "10.0.0.1:5000") == [("10.0.0.1:5000", True)], "never the same host twice"


def test_a_lab_container_listens_on_its_tcp_ports_and_where_its_probes_look() -> None:
    from lab.k3s._kubelet import listening_ports

    coredns = {"ports": [{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53, "protocol": "TCP"},
                         {"containerPort": 9153}],
               "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}},
               "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"}}}
    assert listening_ports(coredns) == ([53, 8080, 8181, 9153], [])
    metrics = {"ports": [{"containerPort": 10250, "name": "https"}],
               "readinessProbe": {"httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"}}}
    assert listening_ports(metrics) == ([], [10250]), "an HTTPS probe's port serves TLS"
    assert listening_ports({"name": "bare"}) == ([8080], [])
    assert listening_ports({"startupProbe": {"tcpSocket": {"port": 5432}}}) == ([5432], [])
