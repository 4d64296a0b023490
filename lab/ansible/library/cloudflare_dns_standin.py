#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST-ONLY wrapper: community.general.cloudflare_dns pointed at the Cloudflare stand-in."""
from __future__ import annotations

DOCUMENTATION = r"""
module: cloudflare_dns_standin
short_description: TEST ONLY - community.general.cloudflare_dns against the Cloudflare stand-in
description:
  - Runs C(community.general.cloudflare_dns) unchanged, except that its API endpoint
    (C(CloudflareAPI.cf_api_endpoint)) comes from the environment variable C(CLOUDFLARE_API_BASE_URL),
    for example C(http://127.0.0.1:PORT/client/v4). Without that variable the module fails, so it can
    never reach the real Cloudflare.
  - For the lab and the integration tests only; never use it in a real play.
  - Options, return values and behaviour are those of C(community.general.cloudflare_dns).
  - Limitation - the wrapped module is imported from C(ansible_collections.community.general), which
    AnsiballZ does not pack for a plain module import. The module therefore works only where that
    package is importable by the target's interpreter, that is with C(connection: local) and
    C(ansible_python_interpreter) set to the controller's (venv's) Python.
options: {}
extends_documentation_fragment: []
author:
  - honeydue.infra lab
"""

EXAMPLES = r"""
# CLOUDFLARE_API_BASE_URL=http://127.0.0.1:8081/client/v4 ANSIBLE_LIBRARY=lab/ansible/library
- name: Create an A record on the stand-in
  cloudflare_dns_standin:
    zone: honeydue.example
    record: api
    type: A
    value: 192.0.2.10
    proxied: true
    api_token: "{{ lookup('env', 'CLOUDFLARE_API_TOKEN') }}"
  environment:
    CLOUDFLARE_API_BASE_URL: "http://127.0.0.1:8081/client/v4"
"""

RETURN = r"""
record:
  description: As community.general.cloudflare_dns.
  returned: success
  type: complex
"""

import os
import sys

# The same module_utils the wrapped module imports: naming them here makes AnsiballZ pack them, and
# the wrapped module must use these packed copies (the packed ``basic`` is the one holding the task's
# arguments; the controller's copy in site-packages has none).
from ansible.module_utils.basic import AnsibleModule, env_fallback  # noqa: F401
from ansible.module_utils.common.text.converters import to_native, to_text  # noqa: F401
from ansible.module_utils.six.moves.urllib.parse import urlencode  # noqa: F401
from ansible.module_utils.urls import fetch_url  # noqa: F401

ENV = "CLOUDFLARE_API_BASE_URL"


def endpoint() -> str | None:
    """The stand-in's base URL, or None when the variable is unset or empty."""
    value = os.environ.get(ENV, "").strip()
    return value.rstrip("/") or None


def main() -> None:
    base = endpoint()
    if base is None:
        # No AnsibleModule yet: answer the JSON a module failure looks like, then stop.
        print('{"failed": true, "msg": "cloudflare_dns_standin is test-only: set %s to the '
              'stand-in base URL (e.g. http://127.0.0.1:PORT/client/v4); refusing to reach the '
              'real Cloudflare API"}' % ENV)
        sys.exit(1)
    from ansible_collections.community.general.plugins.modules import cloudflare_dns

    cloudflare_dns.CloudflareAPI.cf_api_endpoint = base
    cloudflare_dns.main()


if __name__ == "__main__":
    main()
