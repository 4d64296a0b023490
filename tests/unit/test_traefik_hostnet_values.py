"""honeydue.infra.traefik_hostnet's chart values, rendered as the role renders them (its own set_fact
expression and templates, through Ansible's templar) and checked against the Traefik chart's schema
(shared/specs/traefik/values.schema.<chart>.json) of every chart K3s v1.34 bundles, merged over the
chart's defaults and K3s's own HelmChart values as helm-controller merges them."""
from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ansible_collections.honeydue.infra.plugins.lookup.cloudflare_ip_ranges import CLOUDFLARE_IPV4, CLOUDFLARE_IPV6
from lab.k3s._releases import _k3s_traefik_values
from lab.standins import _traefik_chart as chart
from lab.standins._helmvalues import merge_values
from lab.standins._specs import specs_dir

ROLE = Path(__file__).resolve().parents[2] / "roles" / "traefik_hostnet"
CLOUDFLARE = list(CLOUDFLARE_IPV4 + CLOUDFLARE_IPV6)
# K3s's image tag per chart (the newest release pins Traefik 3.7.4 with chart 40.0.0; lab/k3s/_releases.py).
K3S_TAG = {"37.1.0": None, "39.0.5": None, "40.0.0": "3.7.4"}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _defaults() -> dict[str, Any]:
    return _yaml(ROLE / "defaults" / "main.yml")


def _task(file: str, module: str) -> dict[str, Any]:
    return next(t for t in _yaml(ROLE / "tasks" / file) if module in t)


@functools.cache
def _plugin_loader() -> None:
    from ansible.plugins.loader import init_plugin_loader

    init_plugin_loader()


def render_values(**overrides: Any) -> str:
    """``traefik_hostnet_values_content`` as tasks/chart.yml's set_fact computes it (Cloudflare's ranges
    given directly: the lookup of the default needs the collection loader)."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    _plugin_loader()
    expression = _task("chart.yml", "ansible.builtin.set_fact")["ansible.builtin.set_fact"][
        "traefik_hostnet_values_content"]
    # No Origin certificate (the defaults read the vault; Flexible needs none): tls.yml's fact is off too.
    variables = {**_defaults(), "traefik_hostnet_trusted_ips": CLOUDFLARE, "traefik_hostnet_origin_cert": "",
                 "traefik_hostnet_origin_key": "", "traefik_hostnet_client_auth": False, **overrides,
                 "ansible_search_path": [str(ROLE)], "role_path": str(ROLE)}
    loader = DataLoader()
    loader.set_basedir(str(ROLE))
    return Templar(loader=loader, variables=variables).template(trust_as_template(expression))


def merged(version: str, values: dict[str, Any]) -> dict[str, Any]:
    """What helm gets: the chart's defaults, K3s's HelmChart valuesContent, then the HelmChartConfig's."""
    k3s = yaml.safe_load(_k3s_traefik_values(version, K3S_TAG[version]))
    return merge_values(chart.DEFAULTS[version], [k3s, copy.deepcopy(values)])


def schema_errors(values: dict[str, Any], version: str) -> list[str]:
    schema = json.loads((specs_dir() / "traefik" / f"values.schema.{version}.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values))


def test_the_default_trusted_ips_are_the_origin_cidrs_else_cloudflares() -> None:
    assert _defaults()["traefik_hostnet_trusted_ips"] == \
        "{{ honeydue_origin_cidrs | default(query('honeydue.infra.cloudflare_ip_ranges')) }}"


def test_values_say_what_the_issue_asks() -> None:
    values = yaml.safe_load(render_values())
    assert values["deployment"] == {"kind": "DaemonSet"} and values["hostNetwork"] is True
    for name, port in (("web", 80), ("websecure", 443)):
        assert values["ports"][name] == {"port": port, "hostPort": port, "forwardedHeaders": {"trustedIPs": CLOUDFLARE}}
    assert values["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert values["service"] == {"enabled": False}
    assert values["providers"] == {"kubernetesIngress": {"publishedService": {"enabled": False}}}
    assert values["logs"] == {"access": {"enabled": True}}
    assert values["securityContext"] == {"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                                         "runAsNonRoot": False, "runAsUser": 0, "runAsGroup": 0}
    assert values["podSecurityContext"] == {"runAsNonRoot": False, "runAsUser": 0, "runAsGroup": 0}
    assert values["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"},
                                   "limits": {"cpu": "500m", "memory": "256Mi"}}


@pytest.mark.parametrize("version", chart.CHARTS)
def test_values_meet_the_charts_schema_alone_and_merged(version: str) -> None:
    values = yaml.safe_load(render_values())
    assert schema_errors(values, version) == []
    assert schema_errors(merged(version, values), version) == []
    assert chart.validate(merged(version, values), version) is None, "helm's check in the stand-in agrees"


@pytest.mark.parametrize("version", chart.CHARTS)
def test_values_pass_the_charts_template_checks_and_render_a_hostnetwork_daemonset(version: str) -> None:
    values = yaml.safe_load(render_values(traefik_hostnet_resources={}))  # the stand-in renders no resources
    objects = chart.render(merged(version, values), version)
    assert [o["kind"] for o in objects] == ["DaemonSet", "IngressClass"], "no Service"
    pod = objects[0]["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    ports = {p["name"]: (p["containerPort"], p.get("hostPort")) for p in pod["containers"][0]["ports"]}
    assert ports["web"] == (80, 80) and ports["websecure"] == (443, 443)
    args = pod["containers"][0]["args"]
    for name in ("web", "websecure"):
        assert f"--entryPoints.{name}.forwardedHeaders.trustedIPs={','.join(CLOUDFLARE)}" in args
    assert "--accesslog=true" in args and not any("publishedservice" in a for a in args)


@pytest.mark.parametrize("version", sorted(chart.CHARTS))
def test_full_strict_values_meet_the_schema_and_render_the_default_tls_store_and_option(version: str) -> None:
    values = yaml.safe_load(render_values(traefik_hostnet_origin_cert="PEM", traefik_hostnet_client_auth=True))
    assert schema_errors(merged(version, values), version) == []
    objects = {o["kind"]: o for o in chart.render(merged(version, values), version)}
    assert objects["TLSStore"]["metadata"]["name"] == "default"
    assert objects["TLSStore"]["spec"] == {"defaultCertificate": {"secretName": "honeydue-origin"}}
    assert objects["TLSOption"]["spec"]["clientAuth"] == {"secretNames": ["honeydue-aop-ca"],
                                                          "clientAuthType": "RequireAndVerifyClientCert"}


def test_extra_values_are_merged_last_and_recursively() -> None:
    extra = {"logs": {"access": {"format": "json"}}, "ports": {"web": {"forwardedHeaders": {"insecure": False}}},
             "resources": {"limits": {"memory": "512Mi"}}, "additionalArguments": ["--ping.entryPoint=web"]}
    values = yaml.safe_load(render_values(traefik_hostnet_extra_values=extra))
    assert values["logs"]["access"] == {"enabled": True, "format": "json"}
    assert values["ports"]["web"]["forwardedHeaders"] == {"trustedIPs": CLOUDFLARE, "insecure": False}
    assert values["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
    assert values["additionalArguments"] == ["--ping.entryPoint=web"]
    for version in chart.CHARTS:
        assert schema_errors(merged(version, values), version) == []


def test_values_content_is_stable_and_access_logs_follow_the_variable() -> None:
    assert render_values() == render_values(), "the same text each run: a second run changes nothing"
    assert yaml.safe_load(render_values(traefik_hostnet_access_logs=False))["logs"]["access"]["enabled"] is False
    assert "resources" not in yaml.safe_load(render_values(traefik_hostnet_resources={}))


@pytest.mark.parametrize("bad", [{"hostNetwork": "yes"}, {"updateStrategy": {"rollingUpdate": {"maxSurge": 0},
                                                                             "paused": True}}])
def test_the_schema_refuses_what_the_job_would_refuse(bad: dict[str, Any]) -> None:
    values = yaml.safe_load(render_values(traefik_hostnet_extra_values=bad))
    for version in chart.CHARTS:
        assert schema_errors(merged(version, values), version), (version, bad)


def test_argument_specs_cover_every_default_with_its_value() -> None:
    options = _yaml(ROLE / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    defaults = _defaults()
    assert set(defaults) <= set(options), set(defaults) - set(options)
    assert "honeydue_kubeconfig" in options and options["honeydue_kubeconfig"]["type"] == "path"
    for name, value in defaults.items():
        if "default" in options[name]:
            assert options[name]["default"] == value, name
        else:
            assert value is None or (isinstance(value, str) and "{{" in value), \
                f"{name}: only templated (or null) defaults are left out of the spec"


@pytest.mark.parametrize("crd", sorted(p.name for p in (specs_dir() / "k3s").glob("helm.cattle.io_helmchartconfigs.*")))
def test_the_helmchartconfig_meets_each_bundled_crd(crd: str) -> None:
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    text = (ROLE / "templates" / "helmchartconfig.yaml.j2").read_text()
    content = render_values()
    obj = yaml.safe_load(Templar(loader=DataLoader(), variables={"traefik_hostnet_values_content": content})
                         .template(trust_as_template(text)))
    assert (obj["apiVersion"], obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]) == \
        ("helm.cattle.io/v1", "HelmChartConfig", "kube-system", "traefik")
    assert obj["spec"] == {"valuesContent": content}
    version = _yaml(specs_dir() / "k3s" / crd)["spec"]["versions"][0]
    jsonschema.Draft7Validator(version["schema"]["openAPIV3Schema"]).validate(obj)
