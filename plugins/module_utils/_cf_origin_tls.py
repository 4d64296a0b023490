# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure planner of cf_origin_tls: a zone's SSL mode, zone-level Authenticated Origin Pulls (AOP) and
Always Use HTTPS.

Private to the collection. No I/O: :func:`plan` and :func:`predict` are plain functions of plain
dicts, and :func:`converge` takes the Cloudflare calls as an object, so everything here is unit-tested
with a fake.

Vendor rules the plan keeps (sources in ``lab/standins/cloudflare.py``):

* Zone-level AOP does not work with the SSL modes ``off`` and ``flexible`` (the edge then talks
  plain HTTP to the origin). A plan whose end state has AOP enabled with such a mode is refused
  before any call, and when both change, AOP is switched off before the mode is lowered and on
  after it is raised.
* Enabling zone-level AOP with no client certificate of the zone's own would not prove anything
  about the caller (global AOP's certificate is the same for every Cloudflare customer): refused
  unless a certificate is given or one is already on the zone.
* Certificates cannot be updated, only uploaded and deleted. Replacing one follows Cloudflare's
  "without downtime" procedure: upload the new one, wait until it is ``active``, then delete the
  old ones. Uploading the same certificate twice is refused by Cloudflare (1406), so the plan
  compares certificates (DER bytes) and uploads only when the zone lacks this one.
* Always Use HTTPS (the ``always_use_https`` zone setting: the edge answers every HTTP request with
  a 301 to https) is what lets the origin close port 80: in Full (strict) the edge reaches the
  origin with the visitor's scheme, so without it an HTTP visitor is sent to the origin's port 80.
  It is the last step of the switch: turned on after the SSL mode is raised, the certificate is
  active and AOP is on (a failure before it leaves HTTP visitors served as before), and the first
  step of backing out: turned off before AOP is switched off and the mode is lowered (the mirror
  order, as for AOP and the mode). Turning it off sends HTTP visitors to the origin's port 80 again.
* Writes are never resent blindly: after a write that got no answer or a 5xx, the zone is read
  again and planned again (at most ``max_replans`` times).
"""
from __future__ import annotations

import base64
import binascii
import re

SSL_MODES = ("off", "flexible", "full", "strict")
PLAIN_HTTP_MODES = ("off", "flexible")  # the edge does not use TLS to the origin: AOP cannot work
GONE = frozenset({"pending_deletion", "deleted", "deletion_timed_out"})
PENDING = frozenset({"initializing", "pending_deployment"})
FAILED = frozenset({"deployment_timed_out"})
UNKNOWN, STALE, REFUSED = "unknown", "stale", "refused"

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.S)
_KEY = re.compile(r"-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----.+?-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----",
                  re.S)

# The token permission each call needs: (dashboard name, API name), for errors on HTTP 403.
PERMISSIONS = {
    ("settings", "read"): ("Zone Settings: Read (or Edit)", "Zone Settings Read"),
    ("settings", "write"): ("Zone Settings: Edit", "Zone Settings Write"),
    ("origin_tls_client_auth", "read"): ("SSL and Certificates: Read (or Edit)", "SSL and Certificates Read"),
    ("origin_tls_client_auth", "write"): ("SSL and Certificates: Edit", "SSL and Certificates Write"),
    ("zones", "read"): ("Zone: Read", "Zone Read"),
}


class PlanError(ValueError):
    """Input or a zone state the module refuses before any write."""


def certificate_der(pem, what="aop_certificate"):
    """The DER bytes of the first certificate of a PEM text (the leaf); PlanError when there is none."""
    m = _PEM.search(pem or "")
    if m is None:
        raise PlanError(f"{what} is not a PEM certificate (no -----BEGIN CERTIFICATE----- block)")
    try:
        return base64.b64decode("".join(m.group(1).split()), validate=True)
    except (binascii.Error, ValueError):
        raise PlanError(f"{what}: the PEM certificate block is not valid base64") from None


def check_private_key(pem):
    """A PEM private key without a password (Cloudflare refuses keys with one)."""
    if not _KEY.search(pem or ""):
        raise PlanError("aop_private_key is not a PEM private key")
    if "ENCRYPTED" in pem or "Proc-Type: 4,ENCRYPTED" in pem:
        raise PlanError("aop_private_key is password-protected; Cloudflare takes keys without a password")


def permission_for(method, path):
    """The (dashboard, API) name of the permission a call to ``path`` needs."""
    kind = "origin_tls_client_auth" if "/origin_tls_client_auth" in path else (
        "settings" if "/settings/" in path else "zones")
    access = "read" if method in ("GET", "HEAD") else "write"
    return PERMISSIONS.get((kind, access), PERMISSIONS[("zones", "read")])


def desired(ssl=None, certificate=None, private_key=None, aop_enabled=None, always_use_https=None):
    """Validate the module's options into ``{"ssl", "certificate", "der", "private_key", "aop_enabled",
    "always_use_https"}`` (``always_use_https``: None, or a bool)."""
    if ssl is not None and ssl not in SSL_MODES:
        raise PlanError(f"ssl must be one of {', '.join(SSL_MODES)}, not {ssl!r}")
    if (certificate is None) != (private_key is None):
        raise PlanError("aop_certificate and aop_private_key go together")
    der = None
    if certificate is not None:
        der = certificate_der(certificate)
        check_private_key(private_key)
    if aop_enabled and ssl in PLAIN_HTTP_MODES:
        raise PlanError(f"aop_enabled=true with ssl={ssl}: zone-level Authenticated Origin Pulls does not work when "
                        "Cloudflare talks plain HTTP to the origin; use ssl: strict (or full)")
    if always_use_https is not None and not isinstance(always_use_https, bool):
        raise PlanError(f"always_use_https must be true or false, not {always_use_https!r}")
    if ssl is None and certificate is None and aop_enabled is None and always_use_https is None:
        raise PlanError("nothing to manage: give ssl, aop_certificate/aop_private_key, aop_enabled or always_use_https")
    return {"ssl": ssl, "certificate": certificate, "der": der, "private_key": private_key,
            "aop_enabled": aop_enabled, "always_use_https": always_use_https}


def reads(want):
    """Which parts of the zone must be read: ``{"ssl", "aop", "certificates", "always_use_https"}`` booleans.

    Only what the task manages (or needs for a safety rule) is read, so a token needs only the
    permissions of what it changes.
    """
    return {"ssl": want["ssl"] is not None or bool(want["aop_enabled"]),
            "aop": want["aop_enabled"] is not None or want["ssl"] in PLAIN_HTTP_MODES,
            "certificates": want["der"] is not None or bool(want["aop_enabled"]),
            "always_use_https": want.get("always_use_https") is not None}


def is_ours(cert, der):
    try:
        return der is not None and certificate_der(cert.get("certificate") or "", "certificate") == der
    except PlanError:
        return False


def plan(current, want):
    """The ordered steps that bring ``current`` (``{"ssl", "aop_enabled", "certificates",
    "always_use_https"}``, None where not read) to ``want`` (from :func:`desired`). Raises PlanError
    for a state it must not produce.

    Steps: ``{"action": "always_use_https", "from", "to"}`` (bools), ``{"action": "aop", "enabled": bool}``,
    ``{"action": "ssl", "from", "to"}``, ``{"action": "upload"}``, ``{"action": "await", "id"}`` (wait
    until the certificate is active), ``{"action": "delete", "id"}``. Always Use HTTPS is turned off
    first and turned on last.
    """
    steps = []
    auh_now, auh_want = current.get("always_use_https"), want.get("always_use_https")
    auh_step = None
    if auh_want is not None and auh_want != auh_now:
        auh_step = {"action": "always_use_https", "from": auh_now, "to": auh_want}
    ssl_now, aop_now = current.get("ssl"), current.get("aop_enabled")
    ssl_end = want["ssl"] if want["ssl"] is not None else ssl_now
    aop_end = want["aop_enabled"] if want["aop_enabled"] is not None else aop_now
    if aop_end and ssl_end in PLAIN_HTTP_MODES:
        if want["aop_enabled"]:
            raise PlanError(f"aop_enabled=true while the zone's SSL mode is {ssl_end}: zone-level Authenticated Origin "
                            "Pulls does not work when Cloudflare talks plain HTTP to the origin; set ssl: strict first "
                            "(or in the same task)")
        raise PlanError(f"ssl={ssl_end} while zone-level Authenticated Origin Pulls is on: switch it off in the same "
                        "task (aop_enabled: false), it is switched off before the SSL mode is lowered")
    if auh_step is not None and not auh_want:
        steps.append(auh_step)  # backing out: before anything of the HTTPS path is taken down
    if want["aop_enabled"] is False and aop_now:
        steps.append({"action": "aop", "enabled": False})
    if want["ssl"] is not None and want["ssl"] != ssl_now:
        steps.append({"action": "ssl", "from": ssl_now, "to": want["ssl"]})
    certs = current.get("certificates") or []
    live = [c for c in certs if c.get("status") not in GONE]
    if want["der"] is not None:
        ours = [c for c in live if is_ours(c, want["der"]) and c.get("status") not in FAILED]
        failed = [c for c in live if is_ours(c, want["der"]) and c.get("status") in FAILED]
        steps += [{"action": "delete", "id": c["id"]} for c in failed]  # never served: delete, then upload again
        if not ours:
            steps += [{"action": "upload"}, {"action": "await", "id": None}]
        elif ours[0].get("status") != "active":
            steps.append({"action": "await", "id": ours[0]["id"]})
        keep = {c["id"] for c in ours[:1]}
        steps += [{"action": "delete", "id": c["id"]} for c in live
                  if c["id"] not in keep and c not in failed]
    elif want["aop_enabled"] and not aop_now and not any(c.get("status") == "active" for c in live):
        raise PlanError("aop_enabled=true, but the zone has no active zone-level client certificate: give "
                        "aop_certificate and aop_private_key (Cloudflare would otherwise present no certificate "
                        "of this zone's own)")
    if want["aop_enabled"] and not aop_now:
        steps.append({"action": "aop", "enabled": True})
    if auh_step is not None and auh_want:
        steps.append(auh_step)  # the last step of the switch
    return steps


def predict(current, steps, want):
    """The zone after ``steps`` (for check mode and --diff); an uploaded certificate has id None."""
    out = {"ssl": current.get("ssl"), "aop_enabled": current.get("aop_enabled"),
           "certificates": [dict(c) for c in current.get("certificates") or []],
           "always_use_https": current.get("always_use_https")}
    for step in steps:
        if step["action"] == "ssl":
            out["ssl"] = step["to"]
        elif step["action"] == "always_use_https":
            out["always_use_https"] = step["to"]
        elif step["action"] == "aop":
            out["aop_enabled"] = step["enabled"]
        elif step["action"] == "upload":
            out["certificates"].append({"id": None, "certificate": want["certificate"], "status": "active"})
        elif step["action"] == "await":
            for c in out["certificates"]:
                if c["id"] == step["id"]:
                    c["status"] = "active"
        elif step["action"] == "delete":
            out["certificates"] = [c for c in out["certificates"] if c["id"] != step["id"]]
    return out


def summary(state, der):
    """``state`` without PEM bodies: ``{"ssl", "aop_enabled", "always_use_https", "certificates": [{id, status,
    expires_on, ours}]}``."""
    certs = [{"id": c.get("id"), "status": c.get("status"), "expires_on": c.get("expires_on"),
              "ours": is_ours(c, der) if der is not None else None}
             for c in state.get("certificates") or [] if c.get("status") not in GONE]
    return {"ssl": state.get("ssl"), "aop_enabled": state.get("aop_enabled"),
            "always_use_https": state.get("always_use_https"),
            "certificates": sorted(certs, key=lambda c: (c["id"] is None, c["id"] or ""))}


class ConvergeError(Exception):
    """The zone could not be brought to the plan.

    ``cause`` is the API error (or None for a timeout), ``applied`` the steps that landed, ``changed``
    whether any did (or may have), ``message`` what happened in words.
    """

    def __init__(self, message, cause=None, applied=(), changed=False):
        self.message = message
        self.cause = cause
        self.applied = list(applied)
        self.changed = changed
        super().__init__(message)


def _read(api, what):
    return {"ssl": api.get_ssl() if what["ssl"] else None,
            "aop_enabled": api.get_aop_enabled() if what["aop"] else None,
            "certificates": api.list_certificates() if what["certificates"] else None,
            "always_use_https": api.get_always_use_https() if what.get("always_use_https") else None}


def _await_active(api, cert_id, applied, timeout, interval, sleep, now):
    """Poll one certificate until ``active``; ConvergeError when it fails or takes longer than ``timeout``."""
    deadline = now() + timeout
    while True:
        cert = api.get_certificate(cert_id)
        status = cert.get("status")
        if status == "active":
            return cert
        if status in FAILED or status in GONE:
            raise ConvergeError(f"zone-level client certificate {cert_id} is {status} at Cloudflare, not active; "
                                "older certificates were kept. Run again to upload it again",
                                applied=applied, changed=bool(applied))
        if now() + interval > deadline:
            raise ConvergeError(f"zone-level client certificate {cert_id} is still {status} after {timeout:g} s "
                                "(aop_activation_timeout); older certificates were kept and AOP was not switched on. "
                                "Run again: it continues from here", applied=applied, changed=bool(applied))
        sleep(interval)


def converge(api, want, check_mode=False, max_replans=3, activation_timeout=300.0, poll_interval=10.0,
             sleep=None, now=None, api_errors=(Exception,)):
    """Read what ``want`` manages, plan, and (unless ``check_mode``) apply the steps in order.

    ``api`` has ``get_ssl()``, ``set_ssl(mode)``, ``get_aop_enabled()``, ``set_aop_enabled(bool)``,
    ``list_certificates()``, ``get_certificate(id)``, ``upload(certificate, private_key)``,
    ``delete(id)``, ``get_always_use_https()`` (a bool) and ``set_always_use_https(bool)``; a failed
    call raises one of ``api_errors`` whose ``outcome`` is ``refused`` (not applied: stop), or
    ``unknown`` (no answer or 5xx: it may have landed; read again and plan again, at most
    ``max_replans`` times). Returns ``{"before", "after", "steps", "changed", "replans"}``.
    """
    what = reads(want)
    before = _read(api, what)
    steps = plan(before, want)
    if check_mode or not steps:
        return {"before": before, "after": predict(before, steps, want), "steps": steps,
                "changed": bool(steps), "replans": 0}
    applied, replans, current = [], 0, before
    while True:
        uploaded_id, failure, failed_step = None, None, None
        for step in steps:
            try:
                done = _apply(api, step, uploaded_id, applied, activation_timeout, poll_interval, sleep, now)
            except ConvergeError:
                raise
            except api_errors as exc:
                failure, failed_step = exc, step
                break
            if step["action"] == "upload":
                uploaded_id = done.get("id")
            if step["action"] != "await":
                applied.append(dict(step, id=done.get("id")) if step["action"] == "upload" else step)
        if failure is None:
            after = _read(api, what)
            return {"before": before, "after": after, "steps": applied, "changed": bool(applied), "replans": replans}
        outcome = getattr(failure, "outcome", REFUSED)
        if outcome != UNKNOWN:
            raise ConvergeError(str(failure), failure, applied, bool(applied))
        try:
            current = _read(api, what)
        except api_errors as exc:
            raise ConvergeError(f"{failure}; reading the zone again failed too, so whether it landed is unknown: {exc}",
                                failure, applied, True) from None
        steps = plan(current, want)
        applied += _landed(failed_step, steps, current, want)
        if not steps:
            return {"before": before, "after": current, "steps": applied, "changed": True, "replans": replans}
        if replans >= max_replans:
            raise ConvergeError(f"{failure}; after {replans} new plan(s) (max_replans) {len(steps)} step(s) still to do; "
                                "run the task again", failure, applied, True)
        replans += 1


def _landed(step, new_steps, current, want):
    """``[step]`` (marked ``recovered``) when the zone, read again, shows the unanswered write applied."""
    if step["action"] == "await":
        return []
    if step["action"] == "upload":
        if any(s["action"] == "upload" for s in new_steps):
            return []
        ours = [c for c in current.get("certificates") or [] if is_ours(c, want["der"]) and c.get("status") not in GONE]
        return [dict(step, id=ours[0]["id"] if ours else None, recovered=True)]
    return [] if step in new_steps else [dict(step, recovered=True)]


def _apply(api, step, uploaded_id, applied, timeout, interval, sleep, now):
    action = step["action"]
    if action == "ssl":
        return api.set_ssl(step["to"]) or {}
    if action == "aop":
        return api.set_aop_enabled(step["enabled"]) or {}
    if action == "always_use_https":
        return api.set_always_use_https(step["to"]) or {}
    if action == "upload":
        return api.upload() or {}
    if action == "delete":
        return api.delete(step["id"]) or {}
    if action == "await":
        return _await_active(api, step["id"] or uploaded_id, applied, timeout, interval, sleep, now)
    raise ValueError(f"unknown step {action!r}")
