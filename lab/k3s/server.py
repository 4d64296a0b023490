"""`k3s server` for the lab nodes: K3s v1.34's start-up around its embedded etcd, with a real etcd.

What happens, in K3s's order (k3s-io/k3s pkg/etcd/etcd.go, pkg/cluster; see
../shared/specs/k3s/embedded-etcd.md):

1. configuration: /etc/rancher/k3s/config.yaml and config.yaml.d/*.yaml, then the command line;
   unknown keys are warned about and skipped;
2. the datastore: a WAL under server/db/etcd means "restart as the existing member" (``server``
   and ``cluster-init`` are then ignored); else ``server`` means join; else ``cluster-init``
   starts a new cluster (new CAs, new token);
3. join: the token's CA hash checked against the server's /cacerts, the bootstrap data (CAs,
   passwd) fetched with the token, the member list read from /db/info, MemberAddAsLearner (through
   the real etcdctl), etcd started with initial-cluster-state existing, then the wait until the
   etcd leader's promotion loop has made this member a voter;
4. the supervisor and Kubernetes API on :6443 (TLS from the cluster's server CA), the Node object,
   READY=1 to systemd (Type=notify), and the loops: promotion (on the etcd leader), Node
   heartbeats, and the leader-elected controllers.

Lab settings (environment, never needed in production): K3S_STANDIN_PROMOTE_INTERVAL (s, K3s: 15),
K3S_STANDIN_NODE_MONITOR_GRACE (s, Kubernetes: 50), K3S_STANDIN_UNSAFE_NO_FSYNC=1 (etcd
--unsafe-no-fsync in CI), K3S_STANDIN_RELEASE (the release answered as).
"""
from __future__ import annotations

import base64
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from . import _etcd, _notify
from ._etcdclient import EtcdError, Gateway, etcdctl
from ._process import Etcd, write_config

DEFAULT_DATA_DIR = Path("/var/lib/rancher/k3s")
HOLD_PROMOTION = Path("/run/k3s-standin/hold-promotion")


class Fatal(Exception):
    """K3s logs ``level=fatal msg=...`` and exits 1."""


def log(level: str, msg: str) -> None:
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f'time="{ts}" level={level} msg="{msg}"', file=sys.stderr, flush=True)


def default_route_ip() -> str:
    """The IPv4 of the default-route interface (K3s's node IP when node-ip is not set)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route's source address
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


class Paths:
    """K3s's data-dir layout."""

    def __init__(self, data_dir: Path) -> None:
        self.data = data_dir
        self.server = data_dir / "server"
        self.tls = self.server / "tls"
        self.etcd_tls = self.tls / "etcd"
        self.db = self.server / "db"
        self.etcd = self.db / "etcd"
        self.etcd_config = self.etcd / "config"
        self.name_file = self.etcd / "name"
        self.wal = self.etcd / "member" / "wal"
        self.token = self.server / "token"
        self.node_token = self.server / "node-token"
        self.passwd = self.server / "cred" / "passwd"
        self.snapshots = self.db / "snapshots"


def _write_private(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
    os.chmod(path, mode)


def fetch(url: str, *, ca_pem: bytes | None = None, auth: tuple[str, str] | None = None,
          method: str = "GET", body: bytes | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """One HTTPS request to a K3s supervisor; ``ca_pem`` None: unverified (as K3s's first /cacerts)."""
    if ca_pem is None:
        ctx = ssl._create_unverified_context()  # noqa: S323 - K3s fetches /cacerts unverified, then checks its hash
    else:
        ctx = ssl.create_default_context(cadata=ca_pem.decode())
        ctx.check_hostname = False
    req = urllib.request.Request(url, data=body, method=method)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Server:
    """One `k3s server` process."""

    def __init__(self, cfg: dict[str, Any], *, release: str) -> None:
        self.cfg, self.release = cfg, release
        self.paths = Paths(Path(cfg.get("data-dir") or DEFAULT_DATA_DIR))
        self.node_name = (cfg.get("node-name") or socket.gethostname()).lower()
        ips = cfg.get("node-ip") or []
        ips = [i for ip in ([ips] if isinstance(ips, str) else ips) for i in str(ip).split(",") if i]
        self.node_ip = ips[0] if ips else default_route_ip()
        self.node_ips = ips or [self.node_ip]
        self.promote_interval = _env_float("K3S_STANDIN_PROMOTE_INTERVAL", 15.0)
        self.etcd: Etcd | None = None
        self.gateway: Gateway | None = None
        self.member: str = ""
        self.stop_event = threading.Event()
        self.exit_code = 0

    # -- secrets ---------------------------------------------------------------------------
    def _token_value(self) -> str:
        token = self.cfg.get("token") or ""
        if not token and self.cfg.get("token-file"):
            token = Path(self.cfg["token-file"]).read_text().strip()
        return token

    # -- etcd --------------------------------------------------------------------------------
    def _gateway(self) -> Gateway:
        t = self.paths.etcd_tls
        # etcd's request timeout is 5 s + 2 election timeouts = 15 s: without quorum, that is when the
        # apiserver answers "etcdserver: request timed out".
        return Gateway(f"https://127.0.0.1:{_etcd.HTTP_PORT}", t / "server-ca.crt", t / "client.crt", t / "client.key",
                       timeout=15.0)

    def _start_etcd(self, config: dict[str, Any]) -> None:
        write_config(self.paths.etcd_config, config)
        self.etcd = Etcd(self.paths.etcd_config, lambda line: print(line, file=sys.stderr, flush=True))

        def died(rc: int) -> None:
            log("fatal", f"etcd exited: {rc}")
            self.exit_code = 1
            self.stop_event.set()
        self.etcd.start(died)
        self.gateway = self._gateway()

    def _wait_etcd_ready(self, *, learner: bool = False) -> None:
        """Until etcd answers /health (quorum): with TimeoutStartSec=0 systemd waits as long as it takes."""
        assert self.gateway is not None
        last = ""
        while not self.stop_event.is_set():
            ok, reason = self.gateway.health()
            if ok or (learner and self._serving()):
                return
            if reason != last:
                log("info", f"Waiting for etcd server to become available: {reason or 'not ready'}")
                last = reason
            time.sleep(1)
        raise Fatal("stopped while waiting for etcd")

    def _serving(self) -> bool:
        assert self.gateway is not None
        try:
            self.gateway.status()
            return True
        except EtcdError:
            return False

    # -- the three ways to start -----------------------------------------------------------------
    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        try:
            if self.cfg.get("cluster-reset"):
                self._cluster_reset()
                return self.exit_code
            if self.paths.wal.is_dir() and any(self.paths.wal.iterdir()):
                self._restart_existing()
            elif self.cfg.get("server"):
                self._join()
            elif self.cfg.get("cluster-init"):
                self._init_cluster()
            else:
                raise Fatal("the stand-in runs embedded etcd only: set cluster-init (K3s would use SQLite)")
            self._serve()
        except Fatal as exc:
            log("fatal", str(exc))
            self.exit_code = 1
        finally:
            self._shutdown()
        return self.exit_code

    def _restart_existing(self) -> None:
        """A WAL on disk: etcd restarts as the member it was; server/cluster-init are ignored."""
        if self.cfg.get("server") or self.cfg.get("cluster-init"):
            log("info", "etcd member data found on disk: starting as the existing member; server and cluster-init are ignored")
        self.member = self.paths.name_file.read_text().strip()
        self._certs()
        self._start_etcd(self._etcd_config())
        self._wait_etcd_ready()
        self._reconcile_bootstrap()
        self._write_passwd(self._token_value())
        self._write_token_files()

    def _cluster_reset(self) -> None:
        """--cluster-reset [--cluster-reset-restore-path=<snapshot>]: this server alone becomes the
        cluster (etcd's force-new-cluster, or a snapshot restored as a one-member cluster), then k3s
        says to restart without the flag and exits."""
        from . import _snapshot
        restore = self.cfg.get("cluster-reset-restore-path")
        if self.paths.name_file.exists():
            self.member = self.paths.name_file.read_text().strip()
        if not restore and not (self.paths.wal.is_dir() and any(self.paths.wal.iterdir())):
            raise Fatal("etcd: no existing etcd data to reset; use --cluster-reset-restore-path to restore a snapshot")
        self._certs()
        if restore:
            try:
                _snapshot.restore_into(self, str(restore))
            except (OSError, RuntimeError) as exc:
                raise Fatal(str(exc)) from None
            config = self._etcd_config()
        else:
            config = {**self._etcd_config(), "force-new-cluster": True}
        self._start_etcd(config)
        self._wait_etcd_ready()
        _write_private(self.paths.db / "reset-flag", "")
        if restore:
            self._reconcile_bootstrap()
        log("info", "Managed etcd cluster membership has been reset, restart without --cluster-reset flag now. "
                    "Backup and delete ${datadir}/server/db on each peer etcd server and rejoin the nodes")

    def _init_cluster(self) -> None:
        from . import _pki
        _pki.ensure_cas(self.paths.data)
        self._write_passwd(self._token_value())
        password = self._current_password()
        self._certs()
        self.member = _etcd.member_name(self.node_name)
        _write_private(self.paths.name_file, self.member)
        self._start_etcd(self._etcd_config(initial={self.member: _etcd.peer_url(self.node_ip)}, state="new"))
        self._wait_etcd_ready()
        self._save_bootstrap(password)
        self._write_token_files()

    def _join(self) -> None:
        from . import _pki, _token
        server = str(self.cfg["server"]).rstrip("/")
        if "://" not in server:
            raise Fatal(f"invalid server url {server}")
        token = self._token_value()
        if not token:
            raise Fatal("--token is required when joining a server")
        status, ca_pem = fetch(server + "/cacerts")
        if status != 200:
            raise Fatal(f"failed to get CA certs: {server}/cacerts: {status}")
        try:
            _token.check_ca_hash(token, ca_pem)  # K3s's "token CA hash does not match ..."
            password = _token.password_from(token)
        except _token.TokenError as exc:
            raise Fatal(str(exc)) from None
        status, body = fetch(server + "/v1-k3s/server-bootstrap", ca_pem=ca_pem, auth=("server", password))
        if status == 401:
            raise Fatal(f"failed to get bootstrap data from {server}: 401 Unauthorized")
        if status != 200:
            raise Fatal(f"failed to get bootstrap data from {server}: {status} {body[:200]!r}")
        _pki.write_bootstrap_files(self.paths.data, _pki.parse_bootstrap_json(body))
        self._write_passwd(token)
        self._certs()
        self.member = _etcd.member_name(self.node_name)
        while not self.stop_event.is_set():
            status, body = fetch(server + "/db/info", ca_pem=ca_pem, auth=("server", password))
            if status != 200:
                log("info", f"Failed to get etcd member list from {server}: {status}; retrying")
                time.sleep(1)
                continue
            members = [_etcd.Member.from_json(m) for m in json.loads(body).get("members", [])]
            plan = _etcd.plan_join(members, self.member, self.node_name, self.node_ip)
            if plan.action == "fail":
                self.paths.name_file.unlink(missing_ok=True)
                raise Fatal(f"starting kubernetes: preparing server: start managed database: joining etcd cluster: {plan.reason}")
            if plan.action == "retry":
                log("info", f"Waiting for other members to finish joining etcd cluster: {plan.reason}")
                time.sleep(1)
                continue
            if plan.action == "start" and plan.member is not None:
                self.member = plan.member.name or self.member
            else:
                endpoints = [u for m in members if not m.is_learner for u in m.client_urls]
                try:
                    etcdctl(endpoints, self.paths.etcd_tls, "member", "add", self.member, "--learner",
                            f"--peer-urls={_etcd.peer_url(self.node_ip)}", timeout=20)
                except EtcdError as exc:
                    if "Peer URLs already exists" in exc.message:
                        raise Fatal(f"joining etcd cluster: {exc.message}") from None
                    log("info", f"Failed to add etcd member, retrying: {exc.message}")  # unhealthy cluster etc.
                    time.sleep(1)
                    continue
            _write_private(self.paths.name_file, self.member)
            members = [_etcd.Member.from_json(m) for m in json.loads(fetch(
                server + "/db/info", ca_pem=ca_pem, auth=("server", password))[1]).get("members", [])]
            initial = _etcd.initial_cluster(members, self.member, self.node_ip)
            self._start_etcd(self._etcd_config(initial=initial, state="existing"))
            break
        self._wait_promoted()
        self._write_token_files()

    def _wait_promoted(self) -> None:
        """K3s's start waits until the leader's loop has promoted this learner."""
        assert self.gateway is not None
        said = False
        while not self.stop_event.is_set():
            try:
                doc = self.gateway.call("/v3/cluster/member/list", {"linearizable": False})
                me = next((m for m in doc.get("members", []) if m.get("name") == self.member), None)
                if me is not None and not me.get("isLearner"):
                    return
            except EtcdError:
                pass
            if not said:
                log("info", "Waiting for this learner to be promoted to voting member")
                said = True
            time.sleep(0.5)
        raise Fatal("stopped while waiting for promotion")

    # -- files -------------------------------------------------------------------------------------
    def _certs(self) -> None:
        from . import _pki
        tls_san = self.cfg.get("tls-san") or []
        _pki.ensure_leaf_certs(self.paths.data, self.node_name, self.node_ips,
                               [tls_san] if isinstance(tls_san, str) else list(tls_san))

    def _etcd_config(self, initial: dict[str, str] | None = None, state: str = "new") -> dict[str, Any]:
        extra = self.cfg.get("etcd-arg") or []
        return _etcd.etcd_config(self.paths.data, self.member, self.node_ip, initial_cluster=initial, state=state,
                                 expose_metrics=bool(self.cfg.get("etcd-expose-metrics")),
                                 extra_args=[extra] if isinstance(extra, str) else list(extra),
                                 unsafe_no_fsync=os.environ.get("K3S_STANDIN_UNSAFE_NO_FSYNC") == "1")

    def _current_password(self) -> str:
        from . import _passwd
        return _passwd.server_password(self.paths.passwd)

    def _write_passwd(self, token: str) -> None:
        from . import _passwd
        _passwd.ensure_server_password(self.paths.passwd, token, str(self.cfg.get("agent-token") or ""))

    def _write_token_files(self) -> None:
        """server/token (0600, rewritten on every start), node-token (a link to it), agent-token if set;
        and the admin kubeconfig (/etc/rancher/k3s/k3s.yaml, mode from write-kubeconfig-mode)."""
        from . import _passwd, _pki
        ca_pem = (self.paths.tls / "server-ca.crt").read_bytes()
        _passwd.write_token_files(self.paths.data, ca_pem, _passwd.read_passwd(self.paths.passwd),
                                  agent_token_set=bool(self.cfg.get("agent-token")))
        path = Path(self.cfg.get("write-kubeconfig") or "/etc/rancher/k3s/k3s.yaml")
        mode = self.cfg.get("write-kubeconfig-mode")
        mode = int(str(mode), 8) if mode not in (None, "") else 0o600
        text = _pki.kubeconfig("https://127.0.0.1:6443", ca_pem, (self.paths.tls / "client-admin.crt").read_bytes(),
                               (self.paths.tls / "client-admin.key").read_bytes())
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(path, text, mode)

    def _save_bootstrap(self, password: str) -> None:
        """The bootstrap data (CAs, passwd), encrypted with the token, under /bootstrap/<key>."""
        from . import _pki, _token
        assert self.gateway is not None
        blob = _token.encrypt_bootstrap(password, _pki.bootstrap_json(self.paths.data))
        key = _token.bootstrap_key(password)
        if not self.gateway.create(key, blob):
            existing = self.gateway.get(key)
            try:
                _token.decrypt_bootstrap(password, existing[0]["value"])
            except Exception:  # noqa: BLE001 - any decryption failure means another token
                raise Fatal("bootstrap data already found and encrypted with different token") from None

    def _reconcile_bootstrap(self) -> None:
        """On restart, the bootstrap data in etcd (under the configured token's key) wins over the local
        files: a token rotated on another server reaches this one's passwd here. Another token than
        the data's is refused as K3s refuses it."""
        from . import _pki, _token
        assert self.gateway is not None
        token = self._token_value()
        if not token:
            return
        keys = [kv["key"].decode() for kv in self.gateway.get("/bootstrap/", prefix=True)]
        try:
            key = _token.select_bootstrap_key(keys, token)
        except _token.BootstrapError as exc:
            raise Fatal(f"failed to reconcile with datastore: {exc}") from None
        if key is None:
            return
        blob = self.gateway.get(key)[0]["value"]
        _pki.write_bootstrap_files(self.paths.data, _pki.parse_bootstrap_json(
            _token.decrypt_bootstrap(_token.password_from(token), blob)))

    def rotate_token(self, new_token: str) -> str:
        """PUT /v1-k3s/token (``k3s token rotate``): passwd updated (the agent entry too if it was the
        server's), server/token rewritten, the bootstrap data re-encrypted under the new token and the
        old copy deleted. The old token stops working here at once; other servers keep their passwd
        until they are restarted with the new token."""
        from . import _passwd, _pki, _token
        assert self.gateway is not None
        users = _passwd.read_passwd(self.paths.passwd)
        old, new = _passwd.rotate_token(users, new_token, agent_token_set=bool(self.cfg.get("agent-token")))
        _passwd.write_passwd(self.paths.passwd, users)
        self.gateway.put(_token.bootstrap_key(new), _token.encrypt_bootstrap(new, _pki.bootstrap_json(self.paths.data)))
        if _token.bootstrap_key(old) != _token.bootstrap_key(new):
            self.gateway.delete(_token.bootstrap_key(old))
        self._write_token_files()
        log("info", "Server token rotated; restart every server and agent with the new token")
        return new

    def bootstrap_answer(self, password: str) -> bytes | None:
        """/v1-k3s/server-bootstrap: the bootstrap files, if ``password`` is the cluster's."""
        from . import _token
        assert self.gateway is not None
        found = self.gateway.get(_token.bootstrap_key(password))
        if not found:
            return None
        try:
            return _token.decrypt_bootstrap(password, found[0]["value"])
        except Exception:  # noqa: BLE001
            return None

    # -- serving ------------------------------------------------------------------------------------
    def _serve(self) -> None:
        from . import _data
        from ._supervisor import Supervisor
        _data.ensure_data(self.paths.data, set_environ=True)  # K3s extracts its data dir the same way
        self.supervisor = Supervisor(self)
        self.supervisor.start()
        self._start_kubelet()
        _notify.notify("READY=1")
        log("info", "k3s is up and running")
        threading.Thread(target=self._promotion_loop, daemon=True, name="promote").start()
        from . import _snapshot
        threading.Thread(target=_snapshot.scheduler, args=(self,), daemon=True, name="snapshots").start()
        self.stop_event.wait()

    def _start_kubelet(self) -> None:
        """K3s runs the kubelet inside the server process; here it is a child (``k3s standin-kubelet``,
        lab/k3s/_kubelet.py) with the admin client certificate, running this node's pods as processes."""
        from ._kubelet import spawn
        tls = self.paths.tls
        self.kubelet = spawn(api="https://127.0.0.1:6443", ca=tls / "server-ca.crt",
                             cert=tls / "client-admin.crt", key=tls / "client-admin.key", node=self.node_name,
                             data_dir=self.paths.data, registries=self.cfg.get("private-registry"))
        if self.kubelet is not None:
            log("info", f"Running kubelet (pid {self.kubelet.pid}), log {self.paths.data / 'agent' / 'kubelet.log'}")

    def _promotion_loop(self) -> None:
        """Every server runs it; only the etcd leader acts (MemberPromote on each learner)."""
        assert self.gateway is not None
        while not self.stop_event.wait(self.promote_interval):
            if HOLD_PROMOTION.exists():  # a test's "slow promotion" fault (k3s standin-fault hold-promotion)
                continue
            try:
                status = self.gateway.status()
                header = status.get("header", {})
                if str(status.get("leader")) != str(header.get("member_id")):
                    continue
                for m in self.gateway.members():
                    if m.get("isLearner"):
                        try:
                            self.gateway.promote(str(m["ID"]))
                            log("info", f"Promoted learner {m.get('name')} to voting member")
                        except EtcdError as exc:
                            log("info", f"Failed to promote learner {m.get('name')}: {exc.message}")
            except EtcdError:
                continue

    def critical_config(self) -> dict[str, Any]:
        """/v1-k3s/config: the settings every server must share (K3s CriticalControlArgs)."""
        from . import _config
        return _config.critical_args(self.cfg)

    def remove_member(self, name: str) -> None:
        """Remove the etcd member ``name``, transferring leadership away first if it leads (K3s RemovePeer).
        etcd refuses what would lose quorum ("not enough started members")."""
        assert self.gateway is not None
        members = self.gateway.members()
        target = next((m for m in members if m.get("name") == name), None)
        if target is None:
            return
        status = self.gateway.status()
        if str(status.get("leader")) == str(target["ID"]):
            other = next((m for m in members if m is not target and not m.get("isLearner")), None)
            if other is not None and str(status.get("header", {}).get("member_id")) == str(target["ID"]):
                self.gateway.transfer_leadership(str(other["ID"]))
        self.gateway.remove(str(target["ID"]))
        log("info", f"Removed etcd member {name}")

    def _shutdown(self) -> None:
        from ._kubelet import stop
        stop(getattr(self, "kubelet", None))
        sup = getattr(self, "supervisor", None)
        if sup is not None:
            sup.stop()
        if self.etcd is not None:
            self.etcd.stop()
