"""K3s releases the stand-in can pretend to be, and what each prints about itself.

``k3s --version`` (K: pkg/cli/cmds/root.go ``VersionPrinter``): ``<app> version <Version> (<GitCommit>)``
then ``go version <runtime.Version()>``; GitCommit is the 8-hex short commit (observed:
``k3s version v1.34.6+k3s1 (234e6132)`` / ``go version go1.24.13``). The apiserver ``/version`` JSON
carries the full 40-hex K3s commit (observed for v1.34.1 and v1.34.6 on real clusters; v1.34.1's
equals nixpkgs' ``k3sCommit``) and, since Kubernetes 1.33, the emulation/min-compatibility fields.

Each value has its source next to it. ``unconfirmed`` lists the fields that were inferred rather than
read for that release; ``None`` means nothing could be sourced.
"""
from __future__ import annotations

import json



def _k3s_traefik_values(chart: str, tag: str | None) -> str:
    """K3s's own ``manifests/traefik.yaml`` HelmChart ``valuesContent`` (UNCONFIRMED for v1.34).

    Modelled on the v1.34-era copy seen in search results (chart traefik-34.2.1+up34.2.0): pod
    annotations, system-cluster-critical, rancher's mirrored image, the critical-addon tolerations,
    publishedService, PreferDualStack and websecure TLS. Charts >= 39 moved ``ports.websecure.tls`` to
    ``ports.websecure.http.tls`` (schema 39.0.5 closes ``ports.*``), so K3s must ship it there.
    """
    tls = "    tls:\n      enabled: true\n" if chart == "37.1.0" else "    http:\n      tls:\n        enabled: true\n"
    image = '  repository: "rancher/mirrored-library-traefik"\n' + (f'  tag: "{tag}"\n' if tag else "")
    return ('deployment:\n  podAnnotations:\n    prometheus.io/port: "8082"\n    prometheus.io/scrape: "true"\n'
            "providers:\n  kubernetesIngress:\n    publishedService:\n      enabled: true\n"
            'priorityClassName: "system-cluster-critical"\n'
            f"image:\n{image}"
            "tolerations:\n"
            '- key: "CriticalAddonsOnly"\n  operator: "Exists"\n'
            '- key: "node-role.kubernetes.io/control-plane"\n  operator: "Exists"\n  effect: "NoSchedule"\n'
            '- key: "node-role.kubernetes.io/master"\n  operator: "Exists"\n  effect: "NoSchedule"\n'
            'service:\n  ipFamilyPolicy: "PreferDualStack"\n'
            f"ports:\n  websecure:\n{tls}")


RELEASES: dict[str, dict] = {
    "v1.34.6+k3s1": {
        # Production today; stable channel since 2026-03-28 (k3s-io/k3s#13873 "Update stable to v1.34.6+k3s1").
        "kubernetes": "v1.34.6",
        # /version of a real v1.34.6+k3s1 apiserver (public notes, mcp-server pod curl output):
        # gitCommit 234e61326ca4e005522be1e69645c1ca5754121f, buildDate 2026-03-28T03:22:26Z, goVersion go1.24.13.
        # `k3s --version` seen as "k3s version v1.34.6+k3s1 (234e6132)" / "go version go1.24.13".
        "git_commit": "234e61326ca4e005522be1e69645c1ca5754121f",
        "build_date": "2026-03-28T03:22:26Z",
        # k3s-io/k3s#13834 "[release-1.34] Update to v1.34.6-k3s1 and Go 1.24.13".
        "go": "go1.24.13",
        # rancher/rke2#9834 (2026-02-27) moved 1.34 to etcd v3.6.7-k3s1 and K3s v1.35.5/v1.36.1 (May 2026)
        # ship v3.6.7-k3s1; the v1.34.6 release notes themselves were not found: inferred.
        "etcd": "v3.6.7-k3s1",
        # Nodes of v1.34.6+k3s1 clusters report containerRuntimeVersion containerd://2.2.2-bd1.34 (two public
        # install notes); the spec's seed also says v2.2.2. The exact k3s tag suffix is not known.
        "containerd": "v2.2.2",
        # Not sourced for v1.34.6: v1.36.0 (May 2026) notes list "Bump Traefik to 3.6.13", "Bump flannel to
        # v0.28.4", "Bump helm-controller to v0.17.1" as new, so v1.34.6 (March) had older, unknown ones.
        "traefik": None,
        "coredns": None,
        # helm-controller: shared/specs/k3s README lists v0.16.17 for the March-2026 releases ("not confirmed
        # for v1.34.6"); the stand-in serves that CRD. Traefik chart 37.1.0 inferred (docs/research issue-13 §1).
        "helm_controller": "v0.16.17",
        "traefik_chart": "37.1.0",
        "k3s_traefik_values": _k3s_traefik_values("37.1.0", None),
        "flannel": None,
        "unconfirmed": ("etcd", "containerd", "traefik", "coredns", "helm_controller", "flannel",
                        "traefik_chart", "k3s_traefik_values"),
    },
    "v1.34.9+k3s1": {
        # Newest v1.34 patch with a sourced component table: github.com/k3s-io/k3s/releases/tag/v1.34.9%2Bk3s1
        # ("Embedded Component Versions"). Later patches exist (k3s-io/k3s#14543 "Update to v1.34.11-k3s1 and
        # Go 1.26.7") but their tables were not found.
        "kubernetes": "v1.34.9",
        # nixpkgs k3s 1_34/versions.nix (k3sVersion 1.34.9+k3s1, k3sCommit), two forks agree.
        "git_commit": "5f72184f2d188f75171bbd21953b1c16268e425f",
        "build_date": None,  # not found; version_info() uses a stand-in value
        "go": "go1.25.11",  # release notes: "Update to v1.34.9-k3s1 and Go 1.25.11 (#14228)"
        "etcd": "v3.6.12-k3s1",  # release notes table; k3s-io/k3s#14182 log "etcd-version":"3.6.12"
        "containerd": "v2.2.5-k3s2",
        "traefik": "v3.7.4",
        "coredns": "v1.14.4",
        "helm_controller": "v0.17.1",
        # Chart 40.0.0 is the first with appVersion v3.7.x (Chart.yaml at v40.0.0: v3.7.0); K3s's exact
        # rancher build (e.g. 40.x.y+up40.x.y) is not sourced.
        "traefik_chart": "40.0.0",
        "k3s_traefik_values": _k3s_traefik_values("40.0.0", "3.7.4"),
        "flannel": "v0.28.4",
        "kine": "v0.16.1",
        "runc": "v1.4.2",
        "metrics_server": "v0.8.1",
        "local_path_provisioner": "v0.0.36",
        "unconfirmed": ("build_date", "traefik_chart", "k3s_traefik_values"),
    },
}
PRODUCTION = "v1.34.6+k3s1"
NEWEST = "v1.34.9+k3s1"
STAND_IN_BUILD_DATE = "1970-01-01T00:00:00Z"


def release(name: str) -> dict:
    """The table entry for ``name`` (``KeyError`` naming the known releases otherwise)."""
    try:
        return RELEASES[name]
    except KeyError:
        raise KeyError(f"unknown K3s release {name!r}; known: {', '.join(sorted(RELEASES))}") from None


def version_text(name: str) -> str:
    """Exactly what ``k3s --version`` prints, both lines with their newlines."""
    rel = release(name)
    return f"k3s version {name} ({rel['git_commit'][:8]})\ngo version {rel['go']}\n"


def version_info(name: str) -> dict:
    """The kube-apiserver ``/version`` object of this release, fields in the apiserver's order.

    ``minCompatibilityMinor`` is one minor below (1.34 reports 33). ``buildDate`` falls back to
    ``STAND_IN_BUILD_DATE`` where the real one is unknown.
    """
    rel = release(name)
    major, minor = rel["kubernetes"].removeprefix("v").split(".")[:2]
    return {
        "major": major, "minor": minor, "emulationMajor": major, "emulationMinor": minor,
        "minCompatibilityMajor": major, "minCompatibilityMinor": str(int(minor) - 1),
        "gitVersion": name, "gitCommit": rel["git_commit"], "gitTreeState": "clean",
        "buildDate": rel["build_date"] or STAND_IN_BUILD_DATE, "goVersion": rel["go"],
        "compiler": "gc", "platform": "linux/amd64",
    }


def version_json(name: str) -> str:
    """``/version`` as the apiserver writes it (indented two spaces, as curl shows it)."""
    return json.dumps(version_info(name), indent=2)


def etcd_version(name: str) -> str:
    """The embedded etcd's server version (``"3.6.12"`` for v3.6.12-k3s1), as etcd reports ``etcd-version``."""
    return release(name)["etcd"].removeprefix("v").split("-")[0]
