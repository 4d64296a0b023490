"""The stand-in's S3 client signs requests as AWS Signature Version 4 (checked against botocore's signer)."""
from __future__ import annotations

import datetime as dt

import pytest

from lab.k3s import _s3

botocore = pytest.importorskip("botocore")
from botocore.auth import S3SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

CFG = _s3.S3Config(endpoint="s3.eu-central-003.backblazeb2.com", bucket="honeydue-etcd", access_key="AKIDEXAMPLE",
                   secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region="eu-central-003", folder="k3s")


@pytest.mark.parametrize("method, key, query, payload", [
    ("PUT", "k3s/on-demand-node1-1795861966", {}, b"snapshot bytes"),
    ("GET", "", {"list-type": "2", "prefix": "k3s/"}, b""),
    ("DELETE", "k3s/etcd-snapshot-node1-1", {}, b""),
])
def test_signature_matches_botocore(method, key, query, payload):
    path = f"/{CFG.bucket}" + (f"/{key}" if key else "")
    url = f"https://{CFG.endpoint}{path}" + ("?" + "&".join(f"{k}={v.replace('/', '%2F')}" for k, v in sorted(query.items()))
                                            if query else "")
    req = AWSRequest(method=method, url=url, data=payload,
                     headers={"x-amz-content-sha256": _s3.hashlib.sha256(payload).hexdigest()})
    S3SigV4Auth(Credentials(CFG.access_key, CFG.secret_key), "s3", CFG.region).add_auth(req)
    when = dt.datetime.strptime(req.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    ours = _s3.signed_headers(CFG, method, path, query, payload, now=when)
    assert ours["Authorization"] == req.headers["Authorization"]
    # A different secret gives another signature: the comparison is not vacuous.
    other = _s3.signed_headers(_s3.S3Config(**{**CFG.__dict__, "secret_key": "x"}), method, path, query, payload, now=when)
    assert other["Authorization"] != req.headers["Authorization"]


def test_settings_come_from_k3s_etcd_s3_keys():
    cfg = _s3.S3Config.from_k3s({"etcd-s3": True, "etcd-s3-endpoint": "10.0.1.5:9000", "etcd-s3-bucket": "b",
                                 "etcd-s3-access-key": "a", "etcd-s3-secret-key": "s", "etcd-s3-folder": "/k3s/",
                                 "etcd-s3-insecure": True})
    assert (cfg.endpoint, cfg.bucket, cfg.folder, cfg.insecure, cfg.region) == ("10.0.1.5:9000", "b", "k3s", True, "us-east-1")
    assert cfg.key("x") == "k3s/x"
    assert _s3.S3Config.from_k3s({"etcd-s3-bucket": "b"}) is None  # etcd-s3 off
