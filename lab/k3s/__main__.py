"""`k3s` for the lab nodes (built into one executable by lab/k3s/build.py): the subcommands the
collection uses, each answering as K3s v1.34 does.

  k3s --version | -v           the release it is served as
  k3s server [flags]           see lab.k3s.server
  k3s kubectl ...              Debian's kubectl with /etc/rancher/k3s/k3s.yaml
  k3s token rotate [--new-token T] [--token OLD] [--server URL]
  k3s etcd-snapshot save|ls|delete|prune
  k3s check-config             what the collection's role asks of it
  k3s agent [flags]            see lab.k3s.agent
  k3s standin-fault ...        fault hooks for tests (lab.k3s._faults; not a K3s command)
  k3s standin-kubelet ...      the node's kubelet (lab.k3s._kubelet; K3s runs it inside the server)
  k3s standin-pod ...          a lab container's process (lab.k3s._podserver; not a K3s command)
  k3s standin-traefik ...      the lab Traefik's data plane (lab.k3s._ingress_proxy; not a K3s command)
"""
from __future__ import annotations

import os
import sys

from . import _releases


def release() -> str:
    """The release this build answers as: K3S_STANDIN_RELEASE, else the one baked in at build time."""
    import pkgutil
    try:  # inside the zipapp: os.path cannot see it, the package loader can
        baked = (pkgutil.get_data("lab.k3s", "RELEASE") or b"").decode().strip()
    except OSError:
        baked = ""
    return os.environ.get("K3S_STANDIN_RELEASE") or baked or _releases.PRODUCTION


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    if args[0] in ("--version", "-v", "version"):
        print(_releases.version_text(release()))
        return 0
    cmd, rest = args[0], args[1:]
    if cmd == "server":
        from . import _config
        from .server import Server, log
        try:
            loaded = _config.load(argv=rest)
        except ValueError as exc:  # an unknown or malformed flag on the command line is an error
            log("fatal", str(exc))
            return 1
        for w in loaded["warnings"]:
            log("warning", w)
        return Server(loaded["config"], release=release()).run()
    if cmd == "token" and rest[:1] == ["rotate"]:
        from ._cli import token_rotate
        return token_rotate(rest[1:])
    if cmd == "etcd-snapshot":
        from ._cli import etcd_snapshot
        return etcd_snapshot(rest)
    if cmd == "agent":
        from . import _config
        from .agent import Agent
        from .server import log
        try:
            loaded = _config.load(argv=rest)
        except ValueError as exc:
            log("fatal", str(exc))
            return 1
        for w in loaded["warnings"]:
            log("warning", w)
        return Agent(loaded["config"], release=release()).run()
    if cmd == "standin-fault":
        from ._faults import main as fault
        return fault(rest)
    if cmd == "standin-kubelet":
        from ._kubelet import main as kubelet
        return kubelet(rest)
    if cmd == "standin-pod":
        from ._podserver import main as pod
        return pod(rest)
    if cmd == "standin-traefik":
        from ._ingress_proxy import main as traefik
        return traefik(rest)
    if cmd == "check-config":
        from ._cli import check_config
        return check_config(rest)
    if cmd == "kubectl":
        kubeconfig = os.environ.get("KUBECONFIG") or "/etc/rancher/k3s/k3s.yaml"
        os.execvp("kubectl", ["kubectl", f"--kubeconfig={kubeconfig}", *rest])
    print(f"k3s: {cmd}: not simulated by the stand-in", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
