"""The lab edge container's program: Cloudflare's proxy (``lab/edge.py``) for the lab zone.

    python3 -m lab.edge_service --config /etc/lab-edge/edge.json

The config names the Cloudflare stand-in (``cloudflare``: its /client/v4 URL), a token that may read
the zone (``token``), the ``zone`` and ``retry_other_origin`` (false: the Free plan, no retry on
another origin). Each visitor's host is resolved from the zone's **proxied A records** in the
stand-in (read again at most once a second, as DNS changes reach Cloudflare's edge within seconds),
and the SSL mode, AOP and Always Use HTTPS come from the zone's settings. It listens on :80 and
:443 of the container (203.0.113.5, inside the lab's Cloudflare ranges) and connects to the
origins from that address, so the nodes' ufw sees Cloudflare.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

from lab.edge import Edge


class Zone:
    """The zone's records and settings as the edge sees them (cached for ``ttl`` seconds)."""

    def __init__(self, base: str, token: str, zone: str, ttl: float = 1.0) -> None:
        self.base, self.token, self.zone, self.ttl = base.rstrip("/"), token, zone, ttl
        self._zone_id: str | None = None
        self._records: tuple[float, dict[str, list[str]]] = (0.0, {})
        self._lock = threading.Lock()

    def _get(self, path: str) -> Any:
        req = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def _zone(self) -> str:
        if self._zone_id is None:
            self._zone_id = self._get("/zones?" + urllib.parse.urlencode({"name": self.zone}))["result"][0]["id"]
        return self._zone_id

    def origins(self, host: str) -> list[str]:
        with self._lock:
            at, table = self._records
            if time.monotonic() - at > self.ttl:
                try:
                    page, table = 1, {}
                    while True:
                        body = self._get(f"/zones/{self._zone()}/dns_records?type=A&per_page=100&page={page}")
                        for rec in body["result"]:
                            if rec.get("proxied"):
                                table.setdefault(rec["name"].lower(), []).append(rec["content"])
                        info = body.get("result_info") or {}
                        if page >= (info.get("total_pages") or 1):
                            break
                        page += 1
                    self._records = (time.monotonic(), table)
                except OSError as exc:  # keep what was known: the edge does not forget DNS on a blip
                    print(f"edge: records not read ({exc}); keeping the last ones", file=sys.stderr, flush=True)
            return sorted(self._records[1].get(host.lower(), []))

    def settings(self) -> dict[str, Any]:
        root = self.base.rsplit("/client/v4", 1)[0]
        with urllib.request.urlopen(f"{root}/_standin/zone_settings?zone={self.zone}", timeout=5) as resp:
            return json.loads(resp.read())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m lab.edge_service")
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    with open(args.config) as fh:
        conf = json.load(fh)
    zone = Zone(conf["cloudflare"], conf["token"], conf["zone"])
    edge = Edge(zone.settings, zone.origins, zone=conf["zone"], bind="0.0.0.0", listen_http_port=80,
                listen_https_port=443, retry_other_origin=bool(conf.get("retry_other_origin")),
                origin_ca_pem=conf.get("origin_ca_pem"), connect_timeout=float(conf.get("connect_timeout", 15)),
                response_timeout=float(conf.get("response_timeout", 100)))
    edge.start()
    print(f"edge: serving {conf['zone']} on :80 and :443", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    edge.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
