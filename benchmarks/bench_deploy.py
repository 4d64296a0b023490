"""deploy.yml of a new sha against the Kubernetes stand-in, beside the anchor an operator would
script by hand: `kubectl apply --server-side` of the same rendered manifests plus `kubectl rollout
status` of api, admin and worker. The stand-in makes a new ReplicaSet's pods Ready ROLLOUT_S after
it appears (the probes' delay); that is the rollout's own minimum, which both sides pay. Printed:
slack_s = wall time - minimum for each, and their ratio (deploy.yml also checks, records and
summarizes; kubectl does none of that). Alternates A->B and B->A, ROUNDS times each side."""
from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from _common import BIN, REPO, timed

ROLLOUT_S = 2.0
ROUNDS = 3
SHAS = ("1a2b3c4", "5d6e7f8")
VARS = {"honeydue_domain": "honeydue.example", "honeydue_app_probe_period": 1,
        "honeydue_app_api_startup_failure_threshold": 5, "honeydue_app_admin_startup_failure_threshold": 5,
        "honeydue_app_progress_deadline": 60, "honeydue_app_rollout_poll": 1,
        "vault_honeydue_registry_username": "deploy", "vault_honeydue_registry_password": "pull-pw",
        **{f"vault_honeydue_{k}": f"bench-{k}" for k in ("database_url", "redis_password", "secret_key", "jwt_secret",
                                                          "b2_key_id", "b2_application_key", "smtp_username", "smtp_password")}}


def _self_signed(tmp: Path):
    """A TLS context with a throwaway self-signed certificate for 127.0.0.1 (the kubeconfig skips verification)."""
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-standin")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    (tmp / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "tls.crt", tmp / "tls.key")
    return ctx


def main() -> int:
    from lab.standins.kube import KubeStandIn

    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("BENCH deploy skipped: no kubectl on PATH for the anchor (Debian 13: apt install kubectl)")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp_name:
        tmp = Path(tmp_name)
        api = KubeStandIn(token="bench-token", rollout_seconds=ROLLOUT_S)
        api.deadline_factor = 1.0  # progress deadlines in real seconds
        api.tls = _self_signed(tmp)  # kubectl sends a bearer token only over HTTPS
        api.start()
        try:
            kubeconfig = api.kubeconfig(tmp / "kubeconfig")
            variables = tmp / "vars.json"
            variables.write_text(json.dumps({**VARS, "honeydue_kubeconfig": str(kubeconfig)}))
            env = {"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_LOCAL_TEMP": str(tmp / "t"),
                   "PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp), "KUBECONFIG": str(kubeconfig)}
            base = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                    "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"@{variables}"]
            for sha in SHAS:  # the manifests of each sha, for the anchor
                out = tmp / sha
                out.mkdir()
                render = tmp / "render.yml"
                render.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
                    {"ansible.builtin.include_role": {"name": "honeydue.infra.honeydue_app", "tasks_from": "render"},
                     "vars": {"honeydue_app_sha": sha, "honeydue_app_render_dir": str(out)}}]}]))
                timed([*base, str(render)], env)
            timed([*base, "deploy.yml", "-e", f"sha={SHAS[0]}", "-e", "skip_image_check=true"], env)  # the starting state
            ours, anchor = [], []
            current = 0
            for _ in range(ROUNDS):
                for side in ("deploy", "kubectl"):
                    current = 1 - current
                    sha = SHAS[current]
                    if side == "deploy":
                        ours.append(timed([*base, "deploy.yml", "-e", f"sha={sha}", "-e", "skip_image_check=true"], env))
                    else:
                        files = [str(tmp / sha / f"{n}.yaml") for n in ("namespace", "secrets", "app", "release")]
                        script = (f"{kubectl} apply --server-side --force-conflicts --field-manager=honeydue.infra "
                                  + " ".join(f"-f {f}" for f in files)
                                  + f" >/dev/null && {kubectl} -n honeydue rollout status deployment/api deployment/admin"
                                  f" statefulset/worker --timeout=120s >/dev/null")
                        anchor.append(timed(["bash", "-c", script], env))
        finally:
            api.stop()
    deploy_s, kubectl_s = statistics.median(ours), statistics.median(anchor)
    slack, anchor_slack = deploy_s - ROLLOUT_S, kubectl_s - ROLLOUT_S
    print(f"BENCH deploy slack_s={slack:.1f} deploy_s={deploy_s:.1f} min_s={ROLLOUT_S:.1f} "
          f"anchor_kubectl_s={kubectl_s:.1f} anchor_slack_s={anchor_slack:.1f} "
          f"slack_ratio={slack / max(anchor_slack, 0.1):.1f}x rounds={ROUNDS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
