"""Helm value merging as K3s's helm-controller feeds it to ``helm install|upgrade`` (pure).

Sources:

* layer order: k3s-io/helm-controller v0.17.1 ``pkg/controllers/chart/chart.go`` ``valuesSecret`` /
  ``valuesSecretAddConfig`` write ``values-0-000-HelmChart-ValuesContent.yaml``,
  ``values-0-001-HelmChart-Values.yaml``, ``values-0-NNN-HelmChart-ValuesSecret.yaml``,
  ``values-1-000-HelmChartConfig-ValuesContent.yaml``, ``values-1-001-HelmChartConfig-Values.yaml``,
  ``values-1-NNN-HelmChartConfig-ValuesSecret.yaml`` into ``/config``; klipper-helm passes them as
  ``--values`` in glob (lexical) order; ``args()`` adds ``spec.set`` as ``--set``/``--set-string``
  (sorted keys; ``typedVal``: ints and ``true``/``false``/``null`` are typed).
* merge: helm ``pkg/cli/values/options.go`` ``mergeMaps`` (later files win, maps merge key by key,
  everything else is replaced) and ``pkg/chartutil/coalesce.go`` (a ``null`` user value deletes the
  chart default's key).
"""
from __future__ import annotations

import copy
import re
from typing import Any

import yaml

_INT = re.compile(r"^[-+]?[0-9]+$")


def merge_maps(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Helm's ``mergeMaps``: ``over`` wins; nested maps merge, lists and scalars replace (nulls kept)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_maps(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def coalesce(user: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Helm's ``coalesce``: user values over chart defaults; a user ``null`` deletes the key."""
    out = copy.deepcopy(defaults)
    for key, value in user.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = coalesce(value, out[key])
        elif isinstance(value, dict):
            out[key] = _drop_nulls(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _drop_nulls(value: dict[str, Any]) -> dict[str, Any]:
    return {k: _drop_nulls(v) if isinstance(v, dict) else copy.deepcopy(v) for k, v in value.items() if v is not None}


def parse_yaml_layer(text: str | None) -> dict[str, Any]:
    """One ``--values`` file (empty text: no values). Non-map YAML is an error, as in helm."""
    data = yaml.safe_load(text or "") or {}
    if not isinstance(data, dict):
        raise ValueError("error unmarshaling JSON: json: cannot unmarshal into Go value of type "
                         "map[string]interface {}")
    return data


def _typed_scalar(text: str) -> Any:
    """helm ``strvals`` typing for ``--set``: ints, ``true``/``false``, ``null``; others stay strings."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if _INT.match(text):
        return int(text)
    return text


def parse_set(spec_set: dict[str, Any] | None) -> dict[str, Any]:
    """``spec.set`` (simple dotted keys only) as one values layer, keys applied in sorted order.

    helm-controller ``args()``: int values and ``true``/``false``/``null`` strings go to ``--set``
    (typed); other strings to ``--set-string``. List indices (``a[0]``) are not supported here.
    """
    out: dict[str, Any] = {}
    for key in sorted(spec_set or {}):
        raw = (spec_set or {})[key]
        if isinstance(raw, int) and not isinstance(raw, bool):
            value: Any = raw
        else:
            text = str(raw).lower() if isinstance(raw, bool) else str(raw)
            value = _typed_scalar(text) if text.lower() in ("true", "false", "null") else text
        if "[" in key:
            raise ValueError(f"stand-in cannot parse --set key {key!r} (list indices)")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return out


def layers_for(chart: dict[str, Any], config: dict[str, Any] | None,
               secrets: list[dict[str, Any]] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(file name, values) of every layer, in the order helm sees them (``secrets`` already decoded).

    ``secrets`` are ``{"owner": "HelmChart"|"HelmChartConfig", "values": {...}}`` records.
    """
    spec = chart.get("spec") or {}
    cspec = (config or {}).get("spec") or {}
    layers = [("values-0-000-HelmChart-ValuesContent.yaml", parse_yaml_layer(spec.get("valuesContent"))),
              ("values-0-001-HelmChart-Values.yaml", spec.get("values") or {})]
    layers += [(f"values-0-{i + 2:03d}-HelmChart-ValuesSecret.yaml", s["values"])
               for i, s in enumerate(s for s in secrets or [] if s["owner"] == "HelmChart")]
    if config is not None:
        layers += [("values-1-000-HelmChartConfig-ValuesContent.yaml", parse_yaml_layer(cspec.get("valuesContent"))),
                   ("values-1-001-HelmChartConfig-Values.yaml", cspec.get("values") or {})]
        layers += [(f"values-1-{i + 2:03d}-HelmChartConfig-ValuesSecret.yaml", s["values"])
                   for i, s in enumerate(s for s in secrets or [] if s["owner"] == "HelmChartConfig")]
    layers.append(("--set", parse_set(spec.get("set"))))
    return sorted(layers[:-1], key=lambda item: item[0]) + layers[-1:]


def merge_values(defaults: dict[str, Any], layers: list[dict[str, Any]]) -> dict[str, Any]:
    """Chart defaults < each layer in order (later wins), nulls deleting keys."""
    user: dict[str, Any] = {}
    for layer in layers:
        user = merge_maps(user, layer)
    return coalesce(user, defaults)
