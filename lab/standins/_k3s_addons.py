"""K3s's packaged components besides Traefik, as the server's deploy controller applies them from
``/var/lib/rancher/k3s/server/manifests``: CoreDNS (``coredns.yaml``), local-path-provisioner
(``local-storage.yaml``) and metrics-server (``metrics-server/``), each a kube-system Deployment.
``--disable coredns|local-storage|metrics-server`` leaves one out, as on K3s.

Modelled on K3s's manifests (the objects, labels, selectors, probes, ports, tolerations and the
fixed kube-dns ClusterIP ``10.43.0.10``); RBAC, the APIService and the volumes' contents are not
served here. Image tags come from the release table (``lab/k3s/_releases.py``); where a release's
tag is not sourced, the newest sourced one stands in and the object carries it in the
``lab.honeydue/unconfirmed`` annotation.
"""
from __future__ import annotations

from typing import Any

CLUSTER_DNS = "10.43.0.10"
ADDONS = ("coredns", "local-storage", "metrics-server")
CRITICAL_TOLERATIONS = [
    {"key": "CriticalAddonsOnly", "operator": "Exists"},
    {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"},
]
# Where a release's component version is not sourced (see lab/k3s/_releases.py), the newest sourced.
FALLBACK = {"coredns": "v1.14.4", "local_path_provisioner": "v0.0.36", "metrics_server": "v0.8.1"}


def _tag(entry: dict[str, Any], field: str) -> tuple[str, bool]:
    value = entry.get(field)
    confirmed = bool(value) and field not in entry.get("unconfirmed", ())
    return value or FALLBACK[field], confirmed


def _meta(name: str, labels: dict[str, str], unconfirmed: bool, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "kube-system", "labels": labels, **extra}
    if unconfirmed:
        meta["annotations"] = {**meta.get("annotations", {}), "lab.honeydue/unconfirmed": "image tag"}
    return meta


def coredns(entry: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    version, confirmed = _tag(entry, "coredns")
    labels = {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}
    probe = {"timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("coredns", labels, not confirmed),
        "spec": {"revisionHistoryLimit": 0, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                 "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                 "template": {"metadata": {"labels": {"k8s-app": "kube-dns"}}, "spec": {
                     "priorityClassName": "system-cluster-critical", "serviceAccountName": "coredns",
                     "tolerations": CRITICAL_TOLERATIONS, "nodeSelector": {"kubernetes.io/os": "linux"},
                     "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                    "whenUnsatisfiable": "DoNotSchedule",
                                                    "labelSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                     "dnsPolicy": "Default",
                     "containers": [{
                         "name": "coredns", "image": f"rancher/mirrored-coredns-coredns:{version.removeprefix('v')}",
                         "imagePullPolicy": "IfNotPresent", "args": ["-conf", "/etc/coredns/Corefile"],
                         "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
                         "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                                   {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                                   {"containerPort": 9153, "name": "metrics", "protocol": "TCP"}],
                         "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                             "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["all"]}},
                         "livenessProbe": {"httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
                                           "initialDelaySeconds": 60, "periodSeconds": 10, **probe},
                         "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"},
                                            "initialDelaySeconds": 0, "periodSeconds": 2, **probe}}]}}}}
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": _meta("kube-dns", {**labels, "kubernetes.io/cluster-service": "true"}, False,
                                 annotations={"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}),
               "spec": {"selector": {"k8s-app": "kube-dns"}, "clusterIP": CLUSTER_DNS, "clusterIPs": [CLUSTER_DNS],
                        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                  {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                                  {"name": "metrics", "port": 9153, "protocol": "TCP"}]}}
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("coredns", {}, False)}
    return [("", "serviceaccounts", account), ("", "services", service), ("apps", "deployments", deployment)]


def local_storage(entry: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    version, confirmed = _tag(entry, "local_path_provisioner")
    labels = {"app": "local-path-provisioner"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("local-path-provisioner", {}, not confirmed),
        "spec": {"revisionHistoryLimit": 0, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "priorityClassName": "system-node-critical",
                     "serviceAccountName": "local-path-provisioner-service-account",
                     "tolerations": CRITICAL_TOLERATIONS,
                     "containers": [{
                         "name": "local-path-provisioner", "image": f"rancher/local-path-provisioner:{version}",
                         "imagePullPolicy": "IfNotPresent",
                         "command": ["local-path-provisioner", "start", "--config", "/etc/config/config.json"],
                         "env": [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]}]}}}}
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": _meta("local-path-provisioner-service-account", {}, False)}
    return [("", "serviceaccounts", account), ("apps", "deployments", deployment)]


def metrics_server(entry: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    version, confirmed = _tag(entry, "metrics_server")
    labels = {"k8s-app": "metrics-server"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("metrics-server", labels, not confirmed),
        "spec": {"revisionHistoryLimit": 0, "strategy": {"rollingUpdate": {"maxUnavailable": 0}},
                 "selector": {"matchLabels": labels},
                 "template": {"metadata": {"name": "metrics-server", "labels": labels}, "spec": {
                     "priorityClassName": "system-node-critical", "serviceAccountName": "metrics-server",
                     "tolerations": CRITICAL_TOLERATIONS,
                     "containers": [{
                         "name": "metrics-server", "image": f"rancher/mirrored-metrics-server:{version}",
                         "imagePullPolicy": "IfNotPresent",
                         "args": ["--cert-dir=/tmp", "--secure-port=10250",
                                  "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
                                  "--kubelet-use-node-status-port", "--metric-resolution=15s"],
                         "ports": [{"containerPort": 10250, "name": "https", "protocol": "TCP"}],
                         "readinessProbe": {"httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"},
                                            "periodSeconds": 2, "failureThreshold": 3, "initialDelaySeconds": 2},
                         "livenessProbe": {"httpGet": {"path": "/livez", "port": "https", "scheme": "HTTPS"},
                                           "periodSeconds": 10, "failureThreshold": 3, "initialDelaySeconds": 10},
                         "securityContext": {"readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsUser": 1000,
                                             "allowPrivilegeEscalation": False}}]}}}}
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": _meta("metrics-server", {"kubernetes.io/cluster-service": "true",
                                                    "kubernetes.io/name": "Metrics-server"}, False),
               "spec": {"selector": labels, "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                                       "targetPort": "https"}]}}
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("metrics-server", {}, False)}
    return [("", "serviceaccounts", account), ("", "services", service), ("apps", "deployments", deployment)]


def manifests(entry: dict[str, Any], disable: tuple[str, ...]) -> list[tuple[str, str, dict[str, Any]]]:
    """(group, plural, object) of every packaged component not disabled, in K3s's apply order."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for name, build in (("coredns", coredns), ("local-storage", local_storage), ("metrics-server", metrics_server)):
        if name not in disable:
            out += build(entry)
    return out

