"""Routes of the lab's Traefik data plane, computed from Kubernetes objects as Traefik's
``kubernetesIngress`` provider does (Traefik v3 docs, "Kubernetes Ingress" provider):

- Ingresses of the class Traefik watches: ``spec.ingressClassName == <class>``, or none when the
  class's IngressClass is the default (``ingressclass.kubernetes.io/is-default-class: "true"``).
- A rule is ``Host(h) && PathPrefix(p)`` (``Prefix``, ``ImplementationSpecific``) or ``Path(p)``
  (``Exact``); a rule without host matches every host. Priority is the rule's length, longest first.
- Backends are the *ready* endpoints of the Service's EndpointSlices (label
  ``kubernetes.io/service-name``), on the slice port whose name is the Service port's name.
  A Service without ready endpoints gives no router at all (``allowEmptyServices`` is false by
  default), so its hosts answer 404, not 503.
- Prefix matching is by path element (``/api`` matches ``/api`` and ``/api/x``, not ``/apix``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"


@dataclass(frozen=True)
class Route:
    host: str                 # "" = any host
    path: str
    exact: bool
    backends: tuple[tuple[str, int], ...]
    service: str              # "<ns>/<name>:<port>", for logs

    @property
    def priority(self) -> int:
        """Traefik's default priority: the length of the rule string."""
        rule = (f"Host(`{self.host}`) && " if self.host else "") + \
            (f"Path(`{self.path}`)" if self.exact else f"PathPrefix(`{self.path}`)")
        return len(rule)

    def matches(self, host: str, path: str) -> bool:
        if self.host and self.host != host.split(":", 1)[0].lower():
            return False
        path = path.split("?", 1)[0] or "/"
        if self.exact:
            return path == self.path
        prefix = self.path.rstrip("/")
        return prefix == "" or path == prefix or path.startswith(prefix + "/")


def _watched(ingress: dict[str, Any], ingress_class: str, default_class: bool) -> bool:
    name = (ingress.get("spec") or {}).get("ingressClassName")
    return name == ingress_class if name else default_class


def _service_port(service: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any] | None:
    for port in (service.get("spec") or {}).get("ports") or []:
        if ("number" in wanted and port.get("port") == wanted["number"]) or \
                ("name" in wanted and port.get("name") == wanted["name"]):
            return port
    return None


def ready_backends(slices: list[dict[str, Any]], port_name: str) -> tuple[tuple[str, int], ...]:
    """(address, port) of every ready endpoint of a Service's slices, for the named port."""
    out: list[tuple[str, int]] = []
    for sl in slices:
        ports = [p for p in sl.get("ports") or [] if (p.get("name") or "") == port_name]
        if not ports:
            continue
        for ep in sl.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is False:
                continue
            out.extend((address, ports[0]["port"]) for address in ep.get("addresses") or [])
    return tuple(sorted(set(out)))


def routes(ingresses: list[dict[str, Any]], services: list[dict[str, Any]], slices: list[dict[str, Any]],
           ingress_classes: list[dict[str, Any]], ingress_class: str = "traefik") -> list[Route]:
    """Every route Traefik would serve, highest priority first."""
    default_class = any(c["metadata"]["name"] == ingress_class and
                        (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"
                        for c in ingress_classes)
    svc = {(s["metadata"].get("namespace", ""), s["metadata"]["name"]): s for s in services}
    found: list[Route] = []
    for ing in ingresses:
        if not _watched(ing, ingress_class, default_class):
            continue
        ns = ing["metadata"].get("namespace", "")
        for rule in (ing.get("spec") or {}).get("rules") or []:
            for p in ((rule.get("http") or {}).get("paths")) or []:
                route = _route(ns, rule.get("host", ""), p, svc, slices)
                if route is not None:
                    found.append(route)
    return sorted(found, key=lambda r: -r.priority)


def _route(ns: str, host: str, path: dict[str, Any], svc: dict[tuple[str, str], dict[str, Any]],
           slices: list[dict[str, Any]]) -> Route | None:
    backend = (path.get("backend") or {}).get("service") or {}
    service = svc.get((ns, backend.get("name", "")))
    port = _service_port(service, backend.get("port") or {}) if service else None
    if port is None:
        return None
    mine = [s for s in slices if s["metadata"].get("namespace", "") == ns and
            (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == backend["name"]]
    backends = ready_backends(mine, port.get("name") or "")
    if not backends:
        return None
    return Route(host=host.lower(), path=path.get("path") or "/", exact=path.get("pathType") == "Exact",
                 backends=backends, service=f"{ns}/{backend['name']}:{port['port']}")


def pick(table: list[Route], host: str, path: str) -> Route | None:
    """The route a request takes (the first match in priority order)."""
    return next((r for r in table if r.matches(host, path)), None)
