# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""K3s server configuration checks: K3s only warns about an unknown config key (and skips it), and
fails a joining server late when a cluster-wide setting differs; these filters fail first."""
from __future__ import annotations

import difflib

from ansible.errors import AnsibleFilterError
from ansible_collections.honeydue.infra.plugins.module_utils._k3s_keys import CRITICAL_KEYS, SERVER_KEYS_V1_34


def k3s_server_config(config):
    """The config dict, unchanged, if every key is a `k3s server` v1.34 key (``key+`` appends count as
    ``key``); otherwise an error naming each unknown key and the nearest known one."""
    if not isinstance(config, dict):
        raise AnsibleFilterError("k3s_server_config: expected a dict of K3s config keys")
    unknown = sorted(k for k in config if str(k).removesuffix("+") not in SERVER_KEYS_V1_34)
    if unknown:
        hints = []
        for key in unknown:
            near = difflib.get_close_matches(str(key).removesuffix("+"), SERVER_KEYS_V1_34, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
        raise AnsibleFilterError("unknown K3s server config keys: " + ", ".join(hints)
                                 + "; K3s v1.34 would only warn and skip them")
    return config


def _norm(value):
    if isinstance(value, (list, tuple)):
        return sorted(str(v) for v in value)
    if isinstance(value, str) and "," in value:
        return sorted(v.strip() for v in value.split(","))
    return value


def k3s_critical_mismatch(configs):
    """``{host: config}`` -> the settings that must match on every server and do not, as
    ``["flannel-backend: node1=vxlan, node2=wireguard-native", ...]`` (empty when they agree)."""
    if not isinstance(configs, dict):
        raise AnsibleFilterError("k3s_critical_mismatch: expected {host: config}")
    out = []
    for key in CRITICAL_KEYS:
        values = {host: _norm((cfg or {}).get(key)) for host, cfg in sorted(configs.items())}
        if key == "disable":
            values = {h: "servicelb" in (v or []) for h, v in values.items()}
            key = "disable servicelb"
        if len({repr(v) for v in values.values()}) > 1:
            out.append(f"{key}: " + ", ".join(f"{h}={v}" for h, v in values.items()))
    return out


class FilterModule:
    """K3s configuration checks."""

    def filters(self):
        return {"k3s_server_config": k3s_server_config, "k3s_critical_mismatch": k3s_critical_mismatch}
