"""A minimal S3 client (AWS Signature Version 4, path-style), stdlib only: what K3s's etcd snapshot
upload needs (put, list, get, delete objects) against any S3 API (Backblaze B2 in production, a
local S3 server in the lab). K3s uses minio-go; path-style addressing is what it uses for an
endpoint that is an address with a port.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ssl
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@dataclass
class S3Config:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    folder: str = ""
    insecure: bool = False  # plain HTTP (etcd-s3-insecure)
    skip_verify: bool = False

    @classmethod
    def from_k3s(cls, cfg: dict) -> S3Config | None:
        """From the etcd-s3* settings; None when etcd-s3 is off."""
        if not cfg.get("etcd-s3"):
            return None
        return cls(endpoint=cfg.get("etcd-s3-endpoint") or "s3.amazonaws.com", bucket=cfg.get("etcd-s3-bucket", ""),
                   access_key=cfg.get("etcd-s3-access-key", ""), secret_key=cfg.get("etcd-s3-secret-key", ""),
                   region=cfg.get("etcd-s3-region") or "us-east-1", folder=(cfg.get("etcd-s3-folder") or "").strip("/"),
                   insecure=bool(cfg.get("etcd-s3-insecure")), skip_verify=bool(cfg.get("etcd-s3-skip-ssl-verify")))

    def key(self, name: str) -> str:
        return f"{self.folder}/{name}" if self.folder else name


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signed_headers(cfg: S3Config, method: str, path: str, query: dict[str, str], payload: bytes,
                   now: dt.datetime | None = None) -> dict[str, str]:
    """SigV4 headers for one request (docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    host = cfg.endpoint
    payload_hash = hashlib.sha256(payload).hexdigest()
    canonical_query = "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
                               for k, v in sorted(query.items()))
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, urllib.parse.quote(path, safe="/-_.~"), canonical_query,
                           "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, payload_hash])
    scope = f"{day}/{cfg.region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = _sign(_sign(_sign(_sign(("AWS4" + cfg.secret_key).encode(), day), cfg.region), "s3"), "aws4_request")
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    return {"x-amz-content-sha256": payload_hash, "x-amz-date": amz_date,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={cfg.access_key}/{scope}, SignedHeaders={signed}, "
                             f"Signature={signature}"}


class S3Error(Exception):
    pass


def request(cfg: S3Config, method: str, key: str = "", query: dict[str, str] | None = None, payload: bytes = b"",
            timeout: float = 60.0) -> bytes:
    query = query or {}
    path = f"/{cfg.bucket}" + (f"/{key}" if key else "")
    url = f"{'http' if cfg.insecure else 'https'}://{cfg.endpoint}{urllib.parse.quote(path, safe='/-_.~')}"
    if query:
        url += "?" + urllib.parse.urlencode(sorted(query.items()), quote_via=urllib.parse.quote)
    headers = signed_headers(cfg, method, path, query, payload)
    if method in ("PUT", "POST"):
        headers["Content-Type"] = "application/octet-stream"  # urllib's default would be form data
    req = urllib.request.Request(url, data=payload if method in ("PUT", "POST") else None, method=method,
                                 headers=headers)
    ctx = None
    if not cfg.insecure:
        ctx = ssl.create_default_context()
        if cfg.skip_verify:
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        code = next(iter(ET.fromstring(body).iter("Code")), None) if body.startswith("<") else None
        raise S3Error(f"{method} {path}: {exc.code} {code.text if code is not None else body[:200]}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise S3Error(f"{method} {path}: {getattr(exc, 'reason', exc)}") from None


def put(cfg: S3Config, name: str, data: bytes) -> None:
    request(cfg, "PUT", cfg.key(name), payload=data)


def get(cfg: S3Config, name: str) -> bytes:
    return request(cfg, "GET", cfg.key(name))


def delete(cfg: S3Config, name: str) -> None:
    request(cfg, "DELETE", cfg.key(name))


def list_objects(cfg: S3Config) -> list[dict]:
    """Objects under the folder: [{"name", "size", "modified"}] (ListObjectsV2, every page)."""
    out, token = [], None
    prefix = f"{cfg.folder}/" if cfg.folder else ""
    while True:
        query = {"list-type": "2", "prefix": prefix}
        if token:
            query["continuation-token"] = token
        root = ET.fromstring(request(cfg, "GET", query=query))
        for item in root.iter(f"{NS}Contents"):
            key = item.findtext(f"{NS}Key", "")
            out.append({"name": key[len(prefix):], "size": int(item.findtext(f"{NS}Size", "0")),
                        "modified": item.findtext(f"{NS}LastModified", "")})
        if root.findtext(f"{NS}IsTruncated") != "true":
            return out
        token = root.findtext(f"{NS}NextContinuationToken")
