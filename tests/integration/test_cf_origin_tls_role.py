"""Role origin_tls and the preflight's Origin certificate check, through ansible-playbook: the client CA
and certificate on the controller (modes, idempotence, renewal, no key in the output), playbooks/
origin_tls.yml against the Cloudflare stand-in, and preflight failing or passing before any change."""
from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import TOKEN

REPO = Path(__file__).resolve().parents[2]
ZONE = "honeydue.example"


def role_play(**role_vars):
    return [{"name": "origin tls", "hosts": "localhost", "gather_facts": False,
             "roles": [{"role": "honeydue.infra.origin_tls", "vars": role_vars}]}]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_client_ca_and_certificate_are_made_once_with_private_modes(tmp_path, playbook):
    secrets = tmp_path / "secrets" / "origin-tls"
    first = playbook(role_play(origin_tls_dir=str(secrets), origin_tls_name=ZONE), extra_args=["-v"])
    assert first.rc == 0, first.stdout[-3000:]
    assert first.changed() >= 5
    assert mode(secrets) == 0o700
    assert mode(secrets / "ca.key") == 0o600 and mode(secrets / "client.key") == 0o600
    ca = x509.load_pem_x509_certificate((secrets / "ca.crt").read_bytes())
    client = x509.load_pem_x509_certificate((secrets / "client.crt").read_bytes())
    assert client.issuer == ca.subject and ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ExtendedKeyUsageOID.CLIENT_AUTH in client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    client.verify_directly_issued_by(ca)
    out = first.stdout + first.stderr
    for key in ("ca.key", "client.key"):
        assert (secrets / key).read_text().splitlines()[1] not in out

    second = playbook(role_play(origin_tls_dir=str(secrets), origin_tls_name=ZONE))
    assert second.rc == 0 and second.changed() == 0, second.stdout[-3000:]


def test_the_client_certificate_is_renewed_within_its_threshold_and_keeps_its_key(tmp_path, playbook):
    secrets = tmp_path / "origin-tls"
    assert playbook(role_play(origin_tls_dir=str(secrets))).rc == 0
    before = {f: (secrets / f).read_bytes() for f in ("ca.crt", "ca.key", "client.crt", "client.key")}
    renew = playbook(role_play(origin_tls_dir=str(secrets), origin_tls_client_renew_before_days=400))  # > 365 days
    assert renew.rc == 0 and renew.changed() == 1, renew.stdout[-3000:]
    after = {f: (secrets / f).read_bytes() for f in before}
    assert after["client.crt"] != before["client.crt"]
    assert [after[f] == before[f] for f in ("ca.crt", "ca.key", "client.key")] == [True, True, True]


def test_the_playbook_uploads_the_client_certificate_once(tmp_path, playbook, cloudflare_api):
    cloudflare_api.aop_deploy_seconds = 0.2
    secrets = tmp_path / "origin-tls"
    args = ["-e", f"origin_tls_dir={secrets}", "-e", f"origin_tls_api_base_url={cloudflare_api.url}/client/v4",
            "-e", f"honeydue_domain={ZONE}"]
    env = {"CLOUDFLARE_API_TOKEN": TOKEN}
    first = playbook(str(REPO / "playbooks" / "origin_tls.yml"), env=env, extra_args=args)
    assert first.rc == 0, first.stdout[-3000:]
    zone_id = cloudflare_api.zone_by_name(ZONE)["id"]
    certs = cloudflare_api._aop_visible(cloudflare_api.zones[zone_id])
    assert [c["certificate"].strip() for c in certs] == [(secrets / "client.crt").read_text().strip()]
    # The SSL mode and the AOP switch were left alone.
    assert cloudflare_api.ssl_settings[zone_id]["value"] == "flexible" and cloudflare_api.aop_enabled[zone_id] is False
    cloudflare_api.log.clear()
    second = playbook(str(REPO / "playbooks" / "origin_tls.yml"), env=env, extra_args=args)
    assert second.rc == 0 and second.changed() == 0, second.stdout[-3000:]
    assert {r.method for r in cloudflare_api.log} == {"GET"}


def test_the_playbook_does_nothing_when_flexible_is_chosen(tmp_path, playbook):
    secrets = tmp_path / "origin-tls"
    run = playbook(str(REPO / "playbooks" / "origin_tls.yml"),
                   extra_args=["-e", "honeydue_origin_tls=flexible", "-e", f"origin_tls_dir={secrets}"])
    assert run.rc == 0 and run.changed() == 0 and not secrets.exists()


# -- preflight ---------------------------------------------------------------------------------------
def origin_cert(names=(ZONE, f"*.{ZONE}"), days=365):
    """A stand-in for a Cloudflare Origin CA certificate (what preflight checks is the same)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CloudFlare, Inc."),
                      x509.NameAttribute(NameOID.COMMON_NAME, "CloudFlare Origin Certificate")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=2))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


@pytest.fixture
def preflight(tmp_path, playbook):
    """``preflight(mode, cert=None, key=None)`` runs playbooks/preflight.yml as site.yml does."""
    def run(mode="full_strict", cert=None, key=None):
        vault = {"honeydue_origin_tls": mode, "honeydue_domain": ZONE}
        if cert is not None:
            vault["vault_honeydue_origin_cert"] = cert
        if key is not None:
            vault["vault_honeydue_origin_key"] = key
        path = tmp_path / "vault.yml"
        path.write_text(yaml.safe_dump(vault))
        result = playbook(str(REPO / "playbooks" / "preflight.yml"), extra_args=["-e", f"@{path}"])
        run.last = result
        return result
    return run


def failure(run):
    for play in run.result.get("plays", []):
        for task in play["tasks"]:
            host = task["hosts"].get("localhost", {})
            if host.get("failed"):
                return task["task"]["name"], host.get("msg", "")
    return None


def test_preflight_fails_without_an_origin_certificate_and_says_how_to_get_one(preflight):
    run = preflight("full_strict")
    assert run.rc != 0
    name, msg = failure(run)
    assert name.endswith("Full (strict) needs an Origin certificate and key in the vault") and run.changed() == 0
    assert "SSL/TLS > Origin Server > Create Certificate" in msg and "Origin CA API" in msg
    assert "honeydue_origin_tls: flexible" in msg and "vault_honeydue_origin_key" in msg


def test_preflight_passes_when_flexible_is_chosen(preflight):
    run = preflight("flexible")
    assert run.rc == 0 and failure(run) is None, run.stdout[-3000:]


def test_preflight_passes_with_a_matching_origin_certificate_and_never_shows_the_key(preflight):
    cert, key = origin_cert()
    run = preflight("full_strict", cert, key)
    assert run.rc == 0, run.stdout[-3000:]
    assert key.splitlines()[1] not in run.stdout + run.stderr


@pytest.mark.parametrize("case, expected", [
    ("garbage certificate", "vault_honeydue_origin_cert is not a PEM certificate"),
    ("garbage key", "vault_honeydue_origin_key is not a PEM private key"),
    ("other key", "is not the key of vault_honeydue_origin_cert"),
    ("missing name", "does not cover api.honeydue.example, admin.honeydue.example"),
    ("expired", "expired on"),
])
def test_preflight_refuses_a_bad_origin_certificate(preflight, case, expected):
    cert, key = origin_cert()
    if case == "garbage certificate":
        cert = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    elif case == "garbage key":
        key = "not a key"
    elif case == "other key":
        key = origin_cert()[1]
    elif case == "missing name":
        cert, key = origin_cert(names=(ZONE,))
    elif case == "expired":
        cert, key = origin_cert(days=-1)
    run = preflight("full_strict", cert, key)
    assert run.rc != 0
    name, msg = failure(run)
    assert expected in msg, (name, msg)
    if case != "garbage key":
        assert key.splitlines()[1] not in run.stdout + run.stderr


def test_check_mode_creates_nothing_and_then_reports_nothing_to_do(tmp_path, playbook):
    secrets = tmp_path / "origin-tls"
    fresh = playbook(role_play(origin_tls_dir=str(secrets)), extra_args=["--check"])
    assert fresh.rc == 0 and not secrets.exists(), fresh.stdout[-3000:]
    assert playbook(role_play(origin_tls_dir=str(secrets))).rc == 0
    again = playbook(role_play(origin_tls_dir=str(secrets)), extra_args=["--check"])
    assert again.rc == 0 and again.changed() == 0, again.stdout[-3000:]
