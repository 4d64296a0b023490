"""K3s config.yaml + config.yaml.d semantics (lab/k3s/_config.py)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from lab.k3s import _config


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def etc(tmp_path):
    return tmp_path / "etc/rancher/k3s"


def test_k3s_parser_testdata_gives_k3s_expected_args(etc):
    # k3s-io/k3s pkg/configfilearg/testdata: data.yaml, data.yaml.d/01-data.yml, 02-data.yaml and an ignored .txt;
    # expected list = parser_test.go testDataOutput (the revision of data.yaml read has no "isfalse" key).
    write(etc / "config.yaml", 'foo-bar: baz\na-slice:\n- 1\n- "2"\n- ""\n- three\nisempty:\nc: b\nislast: true')
    write(etc / "config.yaml.d/01-data.yml", 'foo-bar: get-overriden\na-slice:\n- 1\n- "1.5"\n- "2"\n- ""\n- three\n'
                                            'b-string: one\nc-slice:\n- one\n- two\nd-slice:\n- one\n- two')
    write(etc / "config.yaml.d/02-data.yaml", "foo-bar: bar-foo\nb-string+: two\nc-slice+:\n- three\n"
                                             "d-slice:\n- three\n- four\ne-slice+:\n- one\n- two")
    write(etc / "config.yaml.d/02-data-ignore-this.txt", "foo-bar: nope\n")
    files = _config.config_files(etc / "config.yaml")
    assert [f.name for f in files] == ["config.yaml", "01-data.yml", "02-data.yaml"]
    assert _config.config_args(files) == [
        "--foo-bar=bar-foo", "--a-slice=1", "--a-slice=1.5", "--a-slice=2", "--a-slice=", "--a-slice=three",
        "--isempty=", "-c=b", "--islast=true", "--b-string=one", "--b-string=two", "--c-slice=one", "--c-slice=two",
        "--c-slice=three", "--d-slice=three", "--d-slice=four", "--e-slice=one", "--e-slice=two"]


def test_dropins_apply_in_name_order_not_creation_order_and_last_value_wins(etc):
    write(etc / "config.yaml", "node-name: base\nflannel-iface: eth0\n")
    write(etc / "config.yaml.d/20-late.yaml", "node-name: late\n")   # created first
    write(etc / "config.yaml.d/10-early.yml", "node-name: early\nflannel-iface: eth1\n")
    result = _config.load(etc / "config.yaml")
    assert result["config"]["node-name"] == "late"
    assert result["config"]["flannel-iface"] == "eth1"
    assert result["files"][1:] == [str(etc / "config.yaml.d/10-early.yml"), str(etc / "config.yaml.d/20-late.yaml")]


def test_plus_appends_to_lists_across_files(etc):
    write(etc / "config.yaml", "tls-san:\n- a.example\nnode-label: [x=1]\n")
    write(etc / "config.yaml.d/10.yaml", "tls-san+:\n- b.example\nnode-label:\n- y=2\n")
    write(etc / "config.yaml.d/20.yaml", "tls-san+: c.example\n")
    config = _config.load(etc / "config.yaml")["config"]
    assert config["tls-san"] == ["a.example", "b.example", "c.example"]
    assert config["node-label"] == ["y=2"]  # without "+" the later list replaces the earlier one


def test_plus_on_a_scalar_makes_two_flags_and_the_later_value_wins(etc):
    write(etc / "config.yaml", "token: first\n")
    write(etc / "config.yaml.d/10.yaml", "token+: second\n")
    result = _config.load(etc / "config.yaml")
    assert result["args"] == ["--token=first", "--token=second"]
    assert result["config"]["token"] == "second"


def test_plus_without_an_earlier_value_sets_the_key(etc):
    write(etc / "config.yaml", "etcd-arg+:\n- quota-backend-bytes=8589934592\n")
    assert _config.load(etc / "config.yaml")["config"]["etcd-arg"] == ["quota-backend-bytes=8589934592"]


def test_unknown_key_is_a_warning_and_is_skipped(etc):
    write(etc / "config.yaml", "node-name: n1\nnot-a-flag: x\nalso-bad:\n- a\n- b\n")
    result = _config.load(etc / "config.yaml")
    assert result["warnings"] == ["Unknown flag --not-a-flag found in config.yaml, skipping",
                                  "Unknown flag --also-bad found in config.yaml, skipping",
                                  "Unknown flag --also-bad found in config.yaml, skipping"]
    assert result["args"] == ["--node-name=n1"]
    assert result["config"] == {"node-name": "n1"}


def test_unknown_key_in_a_dropin_still_names_config_yaml(etc):
    write(etc / "config.yaml.d/50-extra.yaml", "bogus+: 1\n")
    assert _config.load(etc / "config.yaml")["warnings"] == ["Unknown flag --bogus found in config.yaml, skipping"]


def test_unknown_flag_on_the_command_line_is_an_error(etc):
    with pytest.raises(ValueError, match="flag provided but not defined: -bogus"):
        _config.load(etc / "config.yaml", argv=["--bogus=1"])


def test_cli_wins_for_scalars_and_slices_get_config_then_cli_values(etc):
    write(etc / "config.yaml", "token: from-file\ncluster-init: true\ntls-san: [file.example]\n")
    result = _config.load(etc / "config.yaml", argv=["--token", "from-cli", "--cluster-init=false",
                                                     "--tls-san=cli.example"])
    assert result["args"][:3] == ["--token=from-file", "--cluster-init=true", "--tls-san=file.example"]
    assert result["config"]["token"] == "from-cli"
    assert result["config"]["cluster-init"] is False
    assert result["config"]["tls-san"] == ["file.example", "cli.example"]


def test_config_flag_on_the_command_line_selects_the_file(tmp_path, etc):
    write(etc / "config.yaml", "node-name: default-file\n")
    other = write(tmp_path / "other.yaml", "node-name: other-file\n")
    assert _config.load(etc / "config.yaml", argv=["--config", str(other)])["config"]["node-name"] == "other-file"


def test_dropins_are_read_without_config_yaml_and_suffix_case_is_ignored(etc):
    write(etc / "config.yaml.d/a.YAML", "node-name: upper\n")
    write(etc / "config.yaml.d/b.yml.bak", "node-name: backup\n")
    assert _config.load(etc / "config.yaml")["config"]["node-name"] == "upper"


def test_no_config_at_all_is_fine(etc):
    assert _config.load(etc / "config.yaml") == {"config": {}, "args": [], "warnings": [], "files": []}


def test_values_render_as_yaml_v2_and_fmt_sprint_do(etc):
    # 0644 unquoted is YAML 1.1 octal (420); yes/on are booleans; dates stay strings; floats print like Go.
    write(etc / "config.yaml", 'write-kubeconfig-mode: 0644\nwrite-kubeconfig-group: " adm "\n'
                               "cluster-init: yes\nsecrets-encryption: off\nnode-label:\n- built=2024-01-01\n"
                               "- 2024-01-02\n- 1.0\n- 2.5\netcd-snapshot-retention: 7\n")
    result = _config.load(etc / "config.yaml")
    assert "--write-kubeconfig-mode=420" in result["args"]
    assert result["config"]["write-kubeconfig-group"] == "adm"
    assert result["config"]["cluster-init"] is True and result["config"]["secrets-encryption"] is False
    assert result["config"]["node-label"] == ["built=2024-01-01", "2024-01-02", "1", "2.5"]
    assert result["config"]["etcd-snapshot-retention"] == 7


def test_quoted_mode_is_kept(etc):
    write(etc / "config.yaml", 'write-kubeconfig-mode: "0644"\n')
    assert _config.load(etc / "config.yaml")["config"]["write-kubeconfig-mode"] == "0644"


def test_empty_list_sets_nothing_and_null_sets_empty_string(etc):
    write(etc / "config.yaml", "disable: []\nnode-name:\n")
    result = _config.load(etc / "config.yaml")
    assert result["args"] == ["--node-name="]
    assert result["config"] == {"node-name": ""}


def test_one_letter_aliases_are_server_flags(etc):
    write(etc / "config.yaml", "t: short-token\nd: /srv/k3s\n")
    result = _config.load(etc / "config.yaml")
    assert result["args"] == ["-t=short-token", "-d=/srv/k3s"]
    assert result["warnings"] == []
    assert result["config"] == {"token": "short-token", "data-dir": "/srv/k3s"}


def test_k3s_splits_some_slices_on_commas_but_not_others(etc):
    write(etc / "config.yaml", 'disable: traefik,servicelb\ntls-san: ["a.example,b.example"]\nnode-label: ["a=1,b=2"]\n'
                               'kube-apiserver-arg: ["enable-admission-plugins=A,B"]\n')
    config = _config.load(etc / "config.yaml")["config"]
    assert config["disable"] == ["traefik", "servicelb"]
    assert config["tls-san"] == ["a.example", "b.example"]
    assert config["node-label"] == ["a=1,b=2"]
    assert config["kube-apiserver-arg"] == ["enable-admission-plugins=A,B"]


def test_bad_boolean_and_int_fail_like_the_go_flag_package(etc):
    write(etc / "config.yaml", "cluster-init: maybe\n")
    with pytest.raises(ValueError, match='invalid boolean value "maybe" for -cluster-init: parse error'):
        _config.load(etc / "config.yaml")
    write(etc / "config.yaml", "etcd-snapshot-retention: many\n")
    with pytest.raises(ValueError, match='invalid value "many" for flag -etcd-snapshot-retention'):
        _config.load(etc / "config.yaml")


def test_durations_parse_like_go(etc):
    write(etc / "config.yaml", "etcd-s3-timeout: 1h30m\n")
    assert _config.load(etc / "config.yaml")["config"]["etcd-s3-timeout"] == timedelta(hours=1, minutes=30)
    assert _config.effective({})["etcd-s3-timeout"] == timedelta(minutes=5)


@pytest.mark.parametrize("key, kind", [
    ("cluster-init", "bool"), ("server", "string"), ("token", "string"), ("token-file", "string"),
    ("node-ip", "slice"), ("advertise-address", "string"), ("node-name", "string"), ("flannel-iface", "string"),
    ("flannel-backend", "string"), ("tls-san", "slice"), ("write-kubeconfig-mode", "string"), ("data-dir", "string"),
    ("disable", "slice"), ("etcd-arg", "slice"), ("kube-apiserver-arg", "slice"), ("node-label", "slice"),
    ("node-taint", "slice"), ("etcd-snapshot-schedule-cron", "string"), ("etcd-snapshot-retention", "int"),
    ("etcd-snapshot-dir", "string"), ("etcd-snapshot-compress", "bool"), ("etcd-disable-snapshots", "bool"),
    ("etcd-s3", "bool"), ("etcd-s3-bucket", "string"), ("etcd-s3-timeout", "duration"), ("cluster-reset", "bool"),
    ("cluster-reset-restore-path", "string"), ("secrets-encryption", "bool"), ("disable-network-policy", "bool"),
    ("embedded-registry", "bool"), ("etcd-expose-metrics", "bool"), ("agent-token", "string"),
    ("with-node-id", "bool"), ("t", "string"), ("i", "slice"),
])
def test_flag_types_of_the_keys_the_role_uses(key, kind):
    assert _config.flag_type(key) == kind


def test_embedded_type_table_covers_exactly_the_v134_key_list():
    if not _config.KEYS_FILE.is_file():
        pytest.skip("shared/specs/k3s/config-keys-v1.34.txt not present")
    assert set(_config.FLAG_TYPES) == _config.known_keys()


def test_known_keys_reads_a_given_file(tmp_path):
    keys = write(tmp_path / "keys.txt", "# comment\nfoo\n\nbar\n")
    assert _config.known_keys(keys) == {"foo", "bar"}
    write(tmp_path / "c.yaml", "foo: 1\nnode-name: x\n")
    assert _config.load(tmp_path / "c.yaml", keys_path=keys)["warnings"] == [
        "Unknown flag --node-name found in config.yaml, skipping"]


def test_non_mapping_config_is_an_error(etc):
    write(etc / "config.yaml", "- a\n- b\n")
    with pytest.raises(ValueError, match="cannot unmarshal"):
        _config.load(etc / "config.yaml")


# -- critical args -----------------------------------------------------------------------------------
FATAL = ("Error: preparing server: failed to bootstrap cluster data: failed to validate server configuration: "
         "critical configuration value mismatch between servers")


def test_identical_critical_args_do_not_complain():
    cfg = {"flannel-backend": "wireguard-native", "secrets-encryption": True, "disable": ["traefik", "servicelb"]}
    assert _config.critical_mismatch(cfg, dict(cfg)) == []


def test_defaults_equal_explicit_defaults_and_non_critical_keys_do_not_matter():
    explicit = {"cluster-cidr": ["10.42.0.0/16"], "service-cidr": ["10.43.0.0/16"], "cluster-dns": ["10.43.0.10"],
                "flannel-backend": "vxlan", "egress-selector-mode": "agent", "cluster-domain": "cluster.local"}
    assert _config.critical_mismatch({"node-name": "a", "disable": ["traefik"]}, explicit) == []


def test_mismatched_critical_args_give_k3s_warnings_then_the_fatal_error():
    mine = {"flannel-backend": "vxlan"}
    theirs = {"flannel-backend": "wireguard-native", "secrets-encryption": True, "disable-network-policy": True}
    assert _config.critical_mismatch(mine, theirs) == [
        "critical configuration mismatched: disable-network-policy",
        "critical configuration mismatched: secrets-encryption",
        "critical configuration mismatched: flannel-backend",
        FATAL]


def test_disabling_servicelb_is_critical():
    assert _config.critical_mismatch({"disable": ["servicelb"]}, {})[0] == "critical configuration mismatched: disable-service-lb"


def test_cluster_cidr_is_compared_as_a_network():
    assert _config.critical_mismatch({"cluster-cidr": ["10.42.0.1/16"]}, {}) == []
    assert "critical configuration mismatched: cluster-cidr" in _config.critical_mismatch({"cluster-cidr": ["10.52.0.0/16"]}, {})


def test_default_cluster_dns_follows_the_service_cidr():
    assert _config.critical_args({"service-cidr": ["10.96.0.0/12"]})["ClusterDNS"] == "10.96.0.10"
    assert "critical configuration mismatched: cluster-dns" in _config.critical_mismatch({"service-cidr": ["10.96.0.0/12"]}, {})
