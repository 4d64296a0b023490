"""The Traefik chart stand-in: schema validation, template fails and rendering per chart version."""
from __future__ import annotations

from typing import Any

import pytest

from lab.standins import _traefik_chart as chart
from lab.standins._helmvalues import merge_values
from lab.standins._kube_resources import by_kind
from lab.standins._kube_validate import validate_semantics

HEADER = ("Error: INSTALLATION FAILED: values don't meet the specifications of the schema(s) in the following "
          "chart(s):\ntraefik:\n")


def issue14(version: str) -> dict[str, Any]:
    """HelmChartConfig values like issue 14's (hostNetwork DaemonSet on 80/443, no Service)."""
    tls = {"tls": {"enabled": True}} if version == "37.1.0" else {"http": {"tls": {"enabled": True}}}
    return {"deployment": {"kind": "DaemonSet"}, "hostNetwork": True,
            "ports": {"web": {"port": 80, "hostPort": 80,
                              "forwardedHeaders": {"trustedIPs": ["10.0.0.0/8", "192.0.2.0/24"]}},
                      "websecure": {"port": 443, "hostPort": 443, **tls}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "service": {"enabled": False},
            "providers": {"kubernetesIngress": {"publishedService": {"enabled": False}}},
            "logs": {"access": {"enabled": True, "format": "json"}},
            "podSecurityContext": {"runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": False}}


def merged(version: str, *layers: dict[str, Any]) -> dict[str, Any]:
    return merge_values(chart.DEFAULTS[version], list(layers))


@pytest.mark.parametrize("version", chart.CHARTS)
def test_issue14_values_are_valid_and_render_a_hostnetwork_daemonset(version: str) -> None:
    values = merged(version, issue14(version))
    assert chart.validate(values, version) is None
    objects = chart.render(values, version)
    assert [o["kind"] for o in objects] == ["DaemonSet", "IngressClass"]  # service disabled: no Service
    ds = objects[0]
    assert ds["metadata"]["name"] == "traefik" and ds["metadata"]["namespace"] == "kube-system"
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    ports = {p["name"]: p for p in pod["containers"][0]["ports"]}
    assert ports["web"] == {"name": "web", "containerPort": 80, "hostPort": 80, "protocol": "TCP"}
    assert ports["websecure"] == {"name": "websecure", "containerPort": 443, "hostPort": 443, "protocol": "TCP"}
    args = pod["containers"][0]["args"]
    assert "--entryPoints.web.address=:80/tcp" in args
    assert "--entryPoints.websecure.address=:443/tcp" in args
    assert "--entryPoints.web.forwardedHeaders.trustedIPs=10.0.0.0/8,192.0.2.0/24" in args
    assert "--entryPoints.websecure.http.tls=true" in args
    assert "--accesslog=true" in args and "--accesslog.format=json" in args
    assert not any("publishedservice" in a for a in args)
    assert pod["securityContext"]["runAsUser"] == 0
    assert validate_semantics(ds, by_kind("apps/v1", "DaemonSet")) == []


def test_published_service_flag_follows_service_and_toggle() -> None:
    args = chart.render(merged("40.0.0"), "40.0.0")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--providers.kubernetesingress.ingressendpoint.publishedservice=kube-system/traefik" in args
    kinds = [o["kind"] for o in chart.render(merged("40.0.0"), "40.0.0")]
    assert kinds == ["Deployment", "Service", "IngressClass"]


def test_top_level_typo_fails_on_39_and_40_but_not_37() -> None:
    typo = {"hostNetwrok": True}
    assert chart.validate(merged("37.1.0", typo), "37.1.0") is None
    for version in ("39.0.5", "40.0.0"):
        assert chart.validate(merged(version, typo), version) == (
            HEADER + "- at '': additional properties 'hostNetwrok' not allowed")


def test_typo_on_37_is_not_silently_ignored_by_the_renderer() -> None:
    with pytest.raises(ValueError, match="stand-in cannot render hostNetwrok"):
        chart.render(merged("37.1.0", {"hostNetwrok": True}), "37.1.0")


@pytest.mark.parametrize("version", ["39.0.5", "40.0.0"])
def test_old_websecure_tls_path_is_refused_after_37(version: str) -> None:
    text = chart.validate(merged(version, {"ports": {"websecure": {"tls": {"enabled": True}}}}), version)
    assert text == HEADER + "- at '/ports/websecure': additional properties 'tls' not allowed"
    assert chart.validate(merged("37.1.0", {"ports": {"websecure": {"tls": {"enabled": True}}}}), "37.1.0") is None


def test_upgrade_wording_and_gojsonschema_style() -> None:
    text = chart.validate(merged("40.0.0", {"hostNetwork": "yes"}), "40.0.0", upgrade=True)
    assert text.startswith("Error: UPGRADE FAILED: values don't meet")
    assert text.endswith("- at '/hostNetwork': got string, want boolean")
    old = chart.validate(merged("40.0.0", {"hostNetwrok": 1}), "40.0.0", style="gojsonschema")
    assert old.endswith("- (root): Additional property hostNetwrok is not allowed")


def _fail_text(values: dict[str, Any], version: str) -> str:
    with pytest.raises(chart.ChartFail) as info:
        chart.render(merged(version, values), version)
    return info.value.message


def test_hostport_must_equal_port_with_hostnetwork() -> None:
    values = {"hostNetwork": True, "ports": {"web": {"port": 8000, "hostPort": 80}}}
    assert _fail_text(values, "37.1.0") == (
        "execution error at (traefik/templates/_podtemplate.tpl:115:18): ERROR: All hostPort must match their "
        "respective containerPort when `hostNetwork` is enabled")
    assert _fail_text(values, "40.0.0").startswith("execution error at (traefik/templates/_podtemplate.tpl:118:18)")


@pytest.mark.parametrize(("version", "number"), [("37.1.0", "1"), ("39.0.5", "0"), ("40.0.0", "0")])
def test_maxunavailable_zero_with_hostnetwork_daemonset(version: str, number: str) -> None:
    values = {"deployment": {"kind": "DaemonSet"}, "hostNetwork": True}
    assert _fail_text(values, version) == (
        f"execution error at (traefik/templates/daemonset.yaml:16:14): maxUnavailable should be greater than "
        f"{number} when using hostNetwork.")


def test_latest_tag_and_acme_with_daemonset() -> None:
    latest = {"deployment": {"kind": "DaemonSet"}, "image": {"tag": "latest"}}
    assert _fail_text(latest, "39.0.5") == (
        "execution error at (traefik/templates/daemonset.yaml:10:8): \n\n ERROR: latest tag should not be used")
    acme = {"deployment": {"kind": "DaemonSet"},
            "additionalArguments": ["--certificatesresolvers.le.acme.email=a@b.c"]}
    assert _fail_text(acme, "40.0.0") == (
        "execution error at (traefik/templates/daemonset.yaml:5:12): ACME functionality is not supported when "
        "running Traefik as a DaemonSet")


def test_not_append_x_forwarded_for_needs_traefik_37_on_chart_40() -> None:
    values = {"image": {"tag": "v3.6.10"}, "ports": {"web": {"forwardedHeaders": {"notAppendXForwardedFor": True}}}}
    assert _fail_text(values, "40.0.0") == (
        "execution error at (traefik/templates/requirements.yaml:93:6): ERROR: forwardedHeaders."
        "notAppendXForwardedFor is only available for traefik >= v3.7.0.")
    glob = {"image": {"tag": "v3.6.10"}, "global": {"notAppendXForwardedFor": True}}
    assert "global.notAppendXForwardedFor is only available" in _fail_text(glob, "40.0.0")
    ok = chart.render(merged("40.0.0", {"ports": {"web": {"forwardedHeaders": {"notAppendXForwardedFor": True}}}}),
                      "40.0.0")
    assert "--entryPoints.web.forwardedHeaders.notAppendXForwardedFor=true" in \
        ok[0]["spec"]["template"]["spec"]["containers"][0]["args"]


def test_tls_option_and_store_objects() -> None:
    values = {"tlsOptions": {"mtls": {"clientAuth": {"secretNames": ["ca"], "clientAuthType": "RequireAndVerify"
                                                                                             "ClientCert"}}},
              "tlsStore": {"default": {"defaultCertificate": {"secretName": "origin"}}}}
    objects = chart.render(merged("40.0.0", values), "40.0.0")
    extra = {(o["kind"], o["metadata"]["name"]): o["spec"] for o in objects[2:]}
    assert extra == {("TLSOption", "mtls"): values["tlsOptions"]["mtls"],
                     ("TLSStore", "default"): values["tlsStore"]["default"],
                     ("IngressClass", "traefik"): {"controller": "traefik.io/ingress-controller"}}


def test_default_ingress_class() -> None:
    ingress_class = [o for o in chart.render(merged("37.1.0"), "37.1.0") if o["kind"] == "IngressClass"]
    assert [(o["metadata"]["name"], o["metadata"]["annotations"]) for o in ingress_class] == [
        ("traefik", {"ingressclass.kubernetes.io/is-default-class": "true"})]
    off = chart.render(merged("37.1.0", {"ingressClass": {"enabled": False}}), "37.1.0")
    assert "IngressClass" not in [o["kind"] for o in off]


def test_unmodelled_value_is_an_explicit_error() -> None:
    with pytest.raises(ValueError, match="stand-in cannot render ports.web.proxyProtocol.trustedIPs"):
        chart.render(merged("40.0.0", {"ports": {"web": {"proxyProtocol": {"trustedIPs": ["10.0.0.1"]}}}}), "40.0.0")


def _ds(max_surge: Any, max_unavailable: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "traefik"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}},
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
                         "maxSurge": max_surge, "maxUnavailable": max_unavailable}}}}


def test_apiserver_daemonset_rolling_update_rules() -> None:
    rt = by_kind("apps/v1", "DaemonSet")
    both = validate_semantics(_ds(1, 1), rt)
    assert [(p.field, p.message) for p in both] == [(
        "spec.updateStrategy.rollingUpdate.maxSurge",
        'Invalid value: intstr.IntOrString{Type:0, IntVal:1, StrVal:""}: may not be set when maxUnavailable '
        'is non-zero')]
    zero = validate_semantics(_ds(0, "0%"), rt)
    assert [(p.field, p.message) for p in zero] == [(
        "spec.updateStrategy.rollingUpdate.maxUnavailable", "Required value: cannot be 0 when maxSurge is 0")]
    assert validate_semantics(_ds(0, 1), rt) == [] and validate_semantics(_ds("10%", 0), rt) == []


def test_v6_enum_and_minimum_messages() -> None:
    text = chart.validate(merged("40.0.0", {"logs": {"access": {"format": "xml"}},
                                            "ports": {"web": {"hostPort": -1}}}), "40.0.0")
    assert "- at '/logs/access/format': value must be one of 'common', 'genericCLF', 'json', <nil>" in text
    assert "- at '/ports/web/hostPort': minimum: got -1, want 0" in text
