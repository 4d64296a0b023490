"""The resource types the Kubernetes stand-in serves, and the discovery documents built from them.

The table mirrors what a K3s v1.34 server lists under ``/api/v1`` and ``/apis/<group>/<version>``
for the kinds the collection touches (names, kinds, scope, verbs, short names, subresources).
"""
from __future__ import annotations

from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
NS_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")  # namespaces: no deletecollection
SUB_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class ResourceType:
    """One REST resource (``deployments`` in ``apps/v1``)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    custom: bool = False  # served from a CustomResourceDefinition (no strategic merge)
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """``deployments.apps`` — the name used in Status messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_generation(self) -> bool:
        return self.custom or self.group in ("apps", "batch", "policy", "networking.k8s.io",
                                             "apiextensions.k8s.io")


def _core(plural: str, kind: str, namespaced: bool = True, short: tuple[str, ...] = (),
          sub: tuple[str, ...] = (), verbs: tuple[str, ...] = ALL_VERBS) -> ResourceType:
    return ResourceType("", "v1", plural, kind, namespaced, short, sub, verbs, categories=("all",)
                        if plural in ("pods", "services") else ())


RESOURCES: tuple[ResourceType, ...] = (
    _core("namespaces", "Namespace", False, ("ns",), ("status", "finalize"), NS_VERBS),
    _core("pods", "Pod", short=("po",), sub=("status", "log", "exec", "eviction")),
    _core("services", "Service", short=("svc",), sub=("status", "proxy")),
    _core("configmaps", "ConfigMap", short=("cm",)),
    _core("secrets", "Secret"),
    _core("persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",), sub=("status",)),
    _core("persistentvolumes", "PersistentVolume", False, ("pv",), ("status",)),
    _core("nodes", "Node", False, ("no",), ("status", "proxy")),
    _core("serviceaccounts", "ServiceAccount", short=("sa",), sub=("token",)),
    _core("events", "Event", short=("ev",)),
    _core("endpoints", "Endpoints", short=("ep",)),
    ResourceType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
    ResourceType("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("status", "scale"),
                 categories=("all",)),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), ("status", "scale"),
                 categories=("all",)),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), ("status",), categories=("all",)),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",), ("status", "scale"),
                 categories=("all",)),
    ResourceType("apps", "v1", "controllerrevisions", "ControllerRevision", True),
    ResourceType("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), ("status",)),
    ResourceType("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",), ("status",)),
    ResourceType("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),
    ResourceType("batch", "v1", "jobs", "Job", True, (), ("status",), categories=("all",)),
    ResourceType("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ("sc",)),
    # Leader election (kube-controller-manager, K3s, the collection's DNS guard) and node heartbeats.
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
    ResourceType("batch", "v1", "cronjobs", "CronJob", True, ("cj",), ("status",), categories=("all",)),
    ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
                 False, ("crd", "crds"), ("status",)),
    ResourceType("helm.cattle.io", "v1", "helmcharts", "HelmChart", True, (), ("status",), custom=True),
    ResourceType("helm.cattle.io", "v1", "helmchartconfigs", "HelmChartConfig", True, (), (), custom=True),
    ResourceType("traefik.io", "v1alpha1", "ingressroutes", "IngressRoute", True, (), (), custom=True),
    ResourceType("traefik.io", "v1alpha1", "middlewares", "Middleware", True, (), (), custom=True),
    ResourceType("traefik.io", "v1alpha1", "tlsoptions", "TLSOption", True, (), (), custom=True),
    ResourceType("traefik.io", "v1alpha1", "tlsstores", "TLSStore", True, (), (), custom=True),
)

# Subresources whose document kind is not the parent's.
SUBRESOURCE_KINDS = {"scale": ("autoscaling", "v1", "Scale"), "log": ("", "v1", ""),
                     "eviction": ("policy", "v1", "Eviction"), "token": ("authentication.k8s.io", "v1",
                                                                          "TokenRequest")}


def find(group: str, version: str, plural: str) -> ResourceType | None:
    """The resource type served at ``<group>/<version>/<plural>``."""
    for rt in RESOURCES:
        if (rt.group, rt.version, rt.plural) == (group, version, plural):
            return rt
    return None


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    """The resource type of a kind in an apiVersion."""
    for rt in RESOURCES:
        if (rt.api_version, rt.kind) == (api_version, kind):
            return rt
    return None


def group_versions() -> list[tuple[str, str]]:
    """The (group, version) pairs of the named groups, in first-seen order."""
    seen: list[tuple[str, str]] = []
    for rt in RESOURCES:
        if rt.group and (rt.group, rt.version) not in seen:
            seen.append((rt.group, rt.version))
    return seen


def _resource_entry(rt: ResourceType) -> dict[str, object]:
    entry: dict[str, object] = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                                "kind": rt.kind, "verbs": list(rt.verbs)}
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    return entry


def _sub_entry(rt: ResourceType, sub: str) -> dict[str, object]:
    group, version, kind = SUBRESOURCE_KINDS.get(sub, (None, None, rt.kind))
    entry: dict[str, object] = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced,
                                "kind": kind or rt.kind, "verbs": list(SUB_VERBS)}
    if sub in ("log", "proxy"):
        entry["verbs"] = ["get"]
    if sub in ("exec", "eviction", "token"):
        entry["verbs"] = ["create"] if sub != "exec" else ["create", "get"]
    if sub == "finalize":
        entry["verbs"] = ["update"]
    if group is not None and group != rt.group:
        entry["group"] = group
        entry["version"] = version
    return entry


def resource_list(group: str, version: str) -> dict[str, object] | None:
    """The ``APIResourceList`` of a group/version, or None when it is not served."""
    types = [rt for rt in RESOURCES if (rt.group, rt.version) == (group, version)]
    if not types:
        return None
    resources: list[dict[str, object]] = []
    for rt in types:
        resources.append(_resource_entry(rt))
        resources.extend(_sub_entry(rt, sub) for sub in rt.subresources)
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}


def api_group(group: str) -> dict[str, object]:
    """The ``APIGroup`` document of one group."""
    versions = [{"groupVersion": f"{g}/{v}", "version": v} for g, v in group_versions() if g == group]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions,
            "preferredVersion": versions[0]}


def api_group_list() -> dict[str, object]:
    """The ``APIGroupList`` served at ``/apis``."""
    names: list[str] = []
    for group, _ in group_versions():
        if group not in names:
            names.append(group)
    groups = []
    for name in names:
        doc = api_group(name)
        groups.append({k: v for k, v in doc.items() if k not in ("kind", "apiVersion")})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
