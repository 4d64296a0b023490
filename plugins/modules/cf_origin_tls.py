#!/usr/bin/python
# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cf_origin_tls
short_description: A Cloudflare zone's SSL mode, zone-level Authenticated Origin Pulls and Always Use HTTPS
version_added: 0.1.0
author: honeyDue engineering (@honeydue)
description:
  - Sets how Cloudflare's edge connects to the origin, so that the origin can trust only this zone's
    Cloudflare traffic. Four independent parts, each managed only when its option is given, so that
    a switch can be driven one safe step at a time (for example certificate on the origin, then
    O(ssl=strict), then O(aop_enabled=true), then the origin requires client certificates, then
    O(always_use_https=true), then the origin closes port 80).
  - O(ssl) is the zone's SSL/TLS encryption mode (C(PATCH /zones/{id}/settings/ssl), read with C(GET)).
    C(strict) is Full (strict), which needs a valid certificate on the origin, for example a
    Cloudflare Origin CA certificate.
  - O(aop_certificate) and O(aop_private_key) are the client certificate Cloudflare presents to the
    origin with zone-level Authenticated Origin Pulls (C(/zones/{id}/origin_tls_client_auth)). It is
    uploaded only when the zone does not have this very certificate (compared byte for byte).
    A different certificate replaces the zone's others the way Cloudflare documents without downtime
    - upload the new one, wait until Cloudflare reports it C(active) (at most O(aop_activation_timeout)),
    then delete the old ones. Nothing is deleted while the new one is not active.
  - O(aop_enabled) switches zone-level AOP (C(PUT /zones/{id}/origin_tls_client_auth/settings)).
    Zone-level AOP uses the zone's own certificate; global AOP (the C(tls_client_auth) setting, not
    managed here) uses a certificate Cloudflare shares between all its customers, so it proves
    nothing about which zone the traffic belongs to.
  - O(always_use_https) is the zone setting Always Use HTTPS (C(PATCH /zones/{id}/settings/always_use_https)
    with C(on) or C(off), read with C(GET)) - the edge answers every HTTP request with a 301 redirect to
    https. It is what lets the origin close port 80 - in Full (strict) the edge reaches the origin with
    the visitor's scheme, so without it an HTTP visitor is sent to the origin's port 80.
  - Order within one task. Always Use HTTPS is the last step of the switch - turned on after the SSL mode
    is raised, the certificate is active and AOP is on, so a failure before it leaves HTTP visitors
    served as before. It is the first step of backing out - turned off before AOP is switched off and
    the mode is lowered (the mirror order, as for AOP and the mode). Turning it off sends HTTP visitors
    to the origin's port 80 again, so open it on the origin first.
  - Safe by construction. Refused before any write are an end state with AOP on and O(ssl) C(off)
    or C(flexible) (AOP does not work when the edge talks plain HTTP), and switching AOP on while the
    zone has no active client certificate and none is given. When both change, AOP is switched off
    before the mode is lowered and on after it is raised and after the certificate is active.
  - Writes are never resent blindly. After a write that got a 5xx or no answer, the zone is read
    again and planned again (at most O(max_replans) times). Reads are retried on 429, 5xx and
    connection errors, like M(honeydue.infra.cf_dns_roundrobin).
  - "Token permissions: O(ssl) and O(always_use_https) need Zone Settings: Edit (API name Zone Settings Write); the
    certificate and O(aop_enabled) need SSL and Certificates: Edit (SSL and Certificates Write);
    O(zone) needs Zone: Read. A token lacking one gets HTTP 403 with code 10000 (Authentication error)
    from Cloudflare, and the module's error names the permission the refused call needs. Only the
    parts the task manages are read, so a task that manages only O(ssl) or O(always_use_https) needs only
    Zone Settings."
options:
  zone:
    description: Zone name. Needs Zone:Read; give O(zone_id) instead to avoid the lookup.
    type: str
  zone_id:
    description: Zone identifier; saves the zone lookup (and the Zone:Read permission).
    type: str
  ssl:
    description:
      - The zone's SSL/TLS encryption mode; not managed when omitted.
      - C(strict) is Full (strict). C(origin_pull) (Strict, SSL-only origin pull) is Enterprise-only and not offered.
      - Quote C("off") in YAML, where a bare C(off) is the boolean false.
    type: str
    choices: ["off", flexible, full, strict]
  aop_certificate:
    description:
      - PEM client certificate for zone-level Authenticated Origin Pulls (the leaf first); not managed when omitted.
      - Comes with O(aop_private_key).
    type: str
  aop_private_key:
    description: PEM private key of O(aop_certificate), without a password. Never logged or returned.
    type: str
  aop_enabled:
    description: Whether zone-level Authenticated Origin Pulls is on; not managed when omitted.
    type: bool
  always_use_https:
    description:
      - Whether the zone setting Always Use HTTPS is on (Cloudflare's C(on)/C(off)); not managed when omitted.
      - Applied after O(ssl), the certificate and O(aop_enabled) when turned on, and before them when turned off.
    type: bool
  aop_activation_timeout:
    description:
      - Seconds to wait for a newly uploaded certificate to turn C(active) (Cloudflare deploys it within
        minutes) before deleting the zone's other certificates and switching AOP on.
      - On timeout the task fails with RV(changed=true), keeping the old certificates; running it again continues.
    type: float
    default: 300
  aop_poll_interval:
    description: Seconds between reads of a certificate's status while waiting for it.
    type: float
    default: 10
  max_replans:
    description: After a write with an unknown outcome (5xx, no answer), at most this many new plans are applied.
    type: int
    default: 3
attributes:
  check_mode:
    details: Reads the zone and reports the steps it would take (RV(steps)); writes nothing.
  diff_mode:
    details: >-
      Before and after of the SSL mode, the AOP switch, Always Use HTTPS and the zone-level certificates
      (ids and status, no PEM).
notes:
  - Run it on the controller (a localhost play, or C(delegate_to=localhost)); it only talks to the Cloudflare API.
  - "Vendor behaviour relied on: Edit zone setting
    (U(https://developers.cloudflare.com/api/resources/zones/subresources/settings/methods/edit/)),
    Zone-level AOP (U(https://developers.cloudflare.com/ssl/origin-configuration/authenticated-origin-pull/set-up/zone-level/)),
    Manage AOP certificates (U(https://developers.cloudflare.com/ssl/origin-configuration/authenticated-origin-pull/set-up/manage-certificates/))
    and the Zone Certificates API
    (U(https://developers.cloudflare.com/api/resources/origin_tls_client_auth/subresources/zone_certificates/))."
seealso:
  - module: honeydue.infra.cf_dns_roundrobin
extends_documentation_fragment:
  - honeydue.infra.cloudflare
  - honeydue.infra.attributes
"""

EXAMPLES = r"""
- name: Upload the zone's client certificate (AOP stays as it is)
  honeydue.infra.cf_origin_tls:
    zone: honeydue.example
    aop_certificate: "{{ lookup('ansible.builtin.file', '.secrets/origin-tls/client.crt') }}"
    aop_private_key: "{{ lookup('ansible.builtin.file', '.secrets/origin-tls/client.key') }}"
    api_token: "{{ vault_cloudflare_api_token }}"

- name: Step 2 of the switch - Full (strict), once the origin serves a valid certificate
  honeydue.infra.cf_origin_tls:
    zone: honeydue.example
    ssl: strict
    api_token: "{{ vault_cloudflare_api_token }}"

- name: Step 3 - zone-level Authenticated Origin Pulls on (with the certificate, in the safe order)
  honeydue.infra.cf_origin_tls:
    zone: honeydue.example
    aop_certificate: "{{ lookup('ansible.builtin.file', '.secrets/origin-tls/client.crt') }}"
    aop_private_key: "{{ lookup('ansible.builtin.file', '.secrets/origin-tls/client.key') }}"
    aop_enabled: true
    api_token: "{{ vault_cloudflare_api_token }}"
  register: origin_tls

- name: Step 4 - Always Use HTTPS on, before the origin closes port 80
  honeydue.infra.cf_origin_tls:
    zone: honeydue.example
    always_use_https: true
    api_token: "{{ vault_cloudflare_api_token }}"

- name: The whole switch in one task (Always Use HTTPS last)
  honeydue.infra.cf_origin_tls:
    zone: honeydue.example
    ssl: strict
    aop_certificate: "{{ lookup('ansible.builtin.file', '.secrets/origin-tls/client.crt') }}"
    aop_private_key: "{{ lookup('ansible.builtin.file', '.secrets/origin-tls/client.key') }}"
    aop_enabled: true
    always_use_https: true
    api_token: "{{ vault_cloudflare_api_token }}"

- name: Roll back to Flexible (port 80 open on the origin again; Always Use HTTPS off first, then AOP, then the mode)
  honeydue.infra.cf_origin_tls:
    zone_id: 023e105f4ecef8ad9ca31a8372d0c353
    ssl: flexible
    aop_enabled: false
    always_use_https: false
    api_token: "{{ vault_cloudflare_api_token }}"
"""

RETURN = r"""
zone_id:
  description: The zone's identifier.
  returned: success, and failure after the zone lookup
  type: str
ssl:
  description: The zone's SSL mode after the task (in check mode, what it would be); null when not managed.
  returned: success
  type: str
  sample: strict
aop_enabled:
  description: Whether zone-level AOP is on after the task; null when neither read nor managed.
  returned: success
  type: bool
always_use_https:
  description: Whether Always Use HTTPS is on after the task (in check mode, what it would be); null when not managed.
  returned: success
  type: bool
  sample: true
certificate:
  description: The zone-level certificate that is O(aop_certificate) (id null in check mode before its upload).
  returned: success, when O(aop_certificate) is given
  type: dict
  sample: {"id": "2458ce5a0c354c7f82c78e9487d3ff60", "status": "active", "expires_on": "2027-11-28T10:00:00Z", "ours": true}
certificates:
  description: The zone's zone-level client certificates after the task (without the PEM), C(ours) marking O(aop_certificate).
  returned: success, when certificates were read (an empty list when they were not and nothing was applied)
  type: list
  elements: dict
  contains:
    id:
      description: Certificate identifier (null in check mode for one not uploaded yet).
      type: str
    status:
      description: Cloudflare's status of the certificate (C(active), C(pending_deployment), ...).
      type: str
    expires_on:
      description: When the certificate expires.
      type: str
    ours:
      description: Whether this is O(aop_certificate); null when O(aop_certificate) is not given.
      type: bool
steps:
  description:
    - The steps applied, in order (in check mode, the steps that would be applied); on failure, the ones that landed.
    - C(ssl) (from, to), C(upload) (id), C(delete) (id), C(aop) (enabled), C(always_use_https) (from, to, as booleans).
  returned: always
  type: list
  elements: dict
  sample: [{"action": "ssl", "from": "flexible", "to": "strict"}, {"action": "aop", "enabled": true},
           {"action": "always_use_https", "from": false, "to": true}]
replans:
  description: New plans made after writes with an unknown outcome.
  returned: success
  type: int
api_calls:
  description: HTTP requests made, retries included.
  returned: always
  type: int
failure:
  description:
    - Cloudflare's answer to the refused call (C(status) null when no answer came), its C(errors) (code, message),
      and for HTTP 403 the C(permission) the call needs.
  returned: failed on an API error
  type: dict
  sample: {"status": 403, "method": "PATCH", "path": "/zones/023e105f4ecef8ad9ca31a8372d0c353/settings/ssl",
           "errors": [{"code": 10000, "message": "Authentication error"}], "permission": "Zone Settings: Edit"}
  contains:
    status:
      description: HTTP status of the answer; null when no answer came.
      type: int
      returned: always
    method:
      description: HTTP method of the failed call.
      type: str
      returned: always
    path:
      description: API path of the failed call, relative to O(api_base_url).
      type: str
      returned: always
    errors:
      description: Cloudflare's C(errors), as C({code, message}).
      type: list
      elements: dict
      returned: always
    retry_after:
      description: Seconds Cloudflare asked to wait, when a HTTP 429 was not waited out.
      type: float
      returned: when a HTTP 429 was not waited out
    outcome:
      description: For a write, C(unknown) (no answer or 5xx, it may have landed) or C(refused).
      type: str
      returned: when the failed call was a write
    permission:
      description: For HTTP 403, the token permission the refused call needs (dashboard name).
      type: str
      returned: when Cloudflare answered HTTP 403
changed:
  description: On failure too, whether any step landed before it.
  returned: always
  type: bool
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.honeydue.infra.plugins.module_utils._cf_origin_tls import (
    ConvergeError, PlanError, converge, desired, permission_for, summary)
from ansible_collections.honeydue.infra.plugins.module_utils._cloudflare import (
    CloudflareError, client_from_params, common_argument_spec)

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - Cloudflare checks the pair anyway
    x509 = None


class ZoneApi:
    """The calls converge() makes, bound to one zone."""

    def __init__(self, client, zone_id, certificate, private_key):
        self.client, self.zone_id = client, zone_id
        self._certificate, self._private_key = certificate, private_key

    def get_ssl(self):
        return self.client.get_setting(self.zone_id, "ssl").get("value")

    def set_ssl(self, mode):
        return self.client.edit_setting(self.zone_id, "ssl", mode)

    def get_always_use_https(self):
        return self.client.get_setting(self.zone_id, "always_use_https").get("value") == "on"

    def set_always_use_https(self, enabled):
        return self.client.edit_setting(self.zone_id, "always_use_https", "on" if enabled else "off")

    def get_aop_enabled(self):
        return bool(self.client.get_aop_settings(self.zone_id).get("enabled"))

    def set_aop_enabled(self, enabled):
        return self.client.set_aop_settings(self.zone_id, enabled)

    def list_certificates(self):
        return self.client.list_aop_certificates(self.zone_id)

    def get_certificate(self, cert_id):
        return self.client.get_aop_certificate(self.zone_id, cert_id)

    def upload(self):
        return self.client.upload_aop_certificate(self.zone_id, self._certificate, self._private_key)

    def delete(self, cert_id):
        return self.client.delete_aop_certificate(self.zone_id, cert_id)


def check_pair(certificate, private_key):
    """The key belongs to the certificate (checked locally when python-cryptography is there)."""
    if x509 is None:
        return
    try:
        cert = x509.load_pem_x509_certificate(certificate.encode())
        key = serialization.load_pem_private_key(private_key.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise PlanError(f"aop_certificate/aop_private_key do not parse: {exc}") from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise PlanError("aop_private_key is not the key of aop_certificate")


def api_failure(exc):
    """``(message, failure dict)`` for a CloudflareError; a 403 names the permission the call needs."""
    failure = exc.as_dict()
    msg = exc.summary()
    if exc.status == 403:
        dashboard, api_name = permission_for(exc.method, exc.path)
        failure["permission"] = dashboard
        msg += (f". The API token lacks the permission this call needs: {dashboard} (API name: {api_name}) on this zone;"
                " add it to the token (My Profile > API Tokens > Edit) or use a token that has it")
    return msg, failure


def _diff(before, after, der):
    return {"before": summary(before, der), "after": summary(after, der)}


def run(module, client, facts):
    p = module.params
    want = desired(p["ssl"], p["aop_certificate"], p["aop_private_key"], p["aop_enabled"], p["always_use_https"])
    if want["certificate"] is not None:
        check_pair(want["certificate"], want["private_key"])
    zone_id = facts["zone_id"] = p["zone_id"] or client.zone_id(p["zone"])
    api = ZoneApi(client, zone_id, p["aop_certificate"], p["aop_private_key"])
    done = converge(api, want, module.check_mode, p["max_replans"], p["aop_activation_timeout"],
                    p["aop_poll_interval"], api_errors=(CloudflareError,),
                    sleep=time.sleep, now=time.monotonic)
    after = summary(done["after"], want["der"])
    result = {"changed": done["changed"], "zone_id": zone_id, "ssl": after["ssl"], "aop_enabled": after["aop_enabled"],
              "always_use_https": after["always_use_https"], "steps": done["steps"], "replans": done["replans"], "api_calls": client.calls}
    if done["after"].get("certificates") is not None:
        result["certificates"] = after["certificates"]
    if want["der"] is not None:
        result["certificate"] = next((c for c in after["certificates"] if c["ours"] or c["id"] is None), None)
    if module._diff:
        result["diff"] = _diff(done["before"], done["after"], want["der"])
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            zone=dict(type="str"),
            zone_id=dict(type="str"),
            ssl=dict(type="str", choices=["off", "flexible", "full", "strict"]),
            aop_certificate=dict(type="str"),
            aop_private_key=dict(type="str", no_log=True),
            aop_enabled=dict(type="bool"),
            always_use_https=dict(type="bool"),
            aop_activation_timeout=dict(type="float", default=300.0),
            aop_poll_interval=dict(type="float", default=10.0),
            **common_argument_spec(),
        ),
        required_one_of=[("zone", "zone_id"), ("ssl", "aop_certificate", "aop_enabled", "always_use_https")],
        required_together=[("aop_certificate", "aop_private_key")],
        supports_check_mode=True,
    )
    p = module.params
    client = client_from_params(p)
    facts = {}
    try:
        result = run(module, client, facts)
    except PlanError as exc:
        module.fail_json(msg=str(exc), steps=[], api_calls=client.calls, **facts)
    except CloudflareError as exc:  # a read before any write (zone lookup, reading the zone)
        msg, failure = api_failure(exc)
        module.fail_json(msg=msg, failure=failure, steps=[], api_calls=client.calls, **facts)
    except ConvergeError as exc:
        kwargs = {}
        msg = exc.message
        if isinstance(exc.cause, CloudflareError):
            api_msg, kwargs["failure"] = api_failure(exc.cause)
            msg = api_msg if exc.message == str(exc.cause) else exc.message
        msg += f". Applied before the failure: {exc.applied or 'nothing'}"
        module.fail_json(msg=msg, changed=exc.changed, steps=exc.applied, api_calls=client.calls, **facts, **kwargs)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
