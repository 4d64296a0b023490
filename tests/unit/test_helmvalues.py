"""Helm value merging in the helm-controller's layer order (lab/standins/_helmvalues.py)."""
from __future__ import annotations

import pytest

from lab.standins._helmvalues import layers_for, merge_maps, merge_values, parse_set

DEFAULTS = {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "ports": {"web": {"port": 8000, "forwardedHeaders": {"trustedIPs": ["10.0.0.0/8"]}}},
            "service": {"enabled": True}}


def test_maps_merge_and_lists_replace() -> None:
    merged = merge_values(DEFAULTS, [{"updateStrategy": {"rollingUpdate": {"maxUnavailable": 1}}},
                                     {"ports": {"web": {"forwardedHeaders": {"trustedIPs": ["192.0.2.1"]}}}}])
    # maxSurge keeps the chart default 1: the issue-14 trap (maxUnavailable alone is not enough)
    assert merged["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": 1}
    assert merged["ports"]["web"]["forwardedHeaders"]["trustedIPs"] == ["192.0.2.1"]
    assert merged["ports"]["web"]["port"] == 8000


def test_null_deletes_a_default_key() -> None:
    merged = merge_values(DEFAULTS, [{"updateStrategy": {"rollingUpdate": {"maxSurge": None}}}])
    assert merged["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": 0}


def test_later_layer_wins_and_null_survives_between_files() -> None:
    assert merge_maps({"a": {"b": 1}}, {"a": {"b": None}}) == {"a": {"b": None}}
    assert merge_values({}, [{"a": 1}, {"a": 2}, {"a": 3}]) == {"a": 3}


def _chart(values_content: str = "", values: dict | None = None, set_: dict | None = None) -> dict:
    spec: dict = {"valuesContent": values_content}
    if values is not None:
        spec["values"] = values
    if set_ is not None:
        spec["set"] = set_
    return {"metadata": {"name": "traefik"}, "spec": spec}


def test_layer_order_of_helm_controller() -> None:
    chart = _chart("x: chart-content\ny: chart-content\nz: chart-content\nw: chart-content\nv: c\n",
                   {"y": "chart-values", "z": "chart-values", "w": "chart-values", "v": "c"},
                   {"v": "set"})
    config = {"spec": {"valuesContent": "z: config-content\nw: config-content\nv: cc\n",
                       "values": {"w": "config-values", "v": "cv"}}}
    names = [name for name, _ in layers_for(chart, config)]
    assert names == ["values-0-000-HelmChart-ValuesContent.yaml", "values-0-001-HelmChart-Values.yaml",
                     "values-1-000-HelmChartConfig-ValuesContent.yaml", "values-1-001-HelmChartConfig-Values.yaml",
                     "--set"]
    merged = merge_values({"u": "default"}, [v for _, v in layers_for(chart, config)])
    assert merged == {"u": "default", "x": "chart-content", "y": "chart-values", "z": "config-content",
                      "w": "config-values", "v": "set"}


def test_hcc_values_beat_hcc_values_content() -> None:
    config = {"spec": {"valuesContent": "hostNetwork: false\n", "values": {"hostNetwork": True}}}
    merged = merge_values({}, [v for _, v in layers_for(_chart(), config)])
    assert merged["hostNetwork"] is True


def test_set_typing_follows_typed_val() -> None:
    assert parse_set({"a.b": "true", "a.c": 3, "d": "1", "e": "null", "f": ""}) == {
        "a": {"b": True, "c": 3}, "d": "1", "e": None, "f": ""}


def test_set_list_index_is_refused_explicitly() -> None:
    with pytest.raises(ValueError, match="stand-in cannot parse"):
        parse_set({"a[0]": "x"})


def test_values_content_that_is_not_a_map_fails() -> None:
    with pytest.raises(ValueError):
        layers_for(_chart("- a\n- b\n"), None)
