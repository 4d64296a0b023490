"""K3s's configuration file semantics, as ``k3s server`` applies them.

Sources (k3s-io/k3s, read through the search tool; "K:" below):

* K: pkg/configfilearg/parser.go (the version with ``dotDFiles``/``toSlice``/``stripInvalidFlags``) and
  its tests and testdata (``data.yaml``, ``data.yaml.d/01-data.yml``, ``02-data.yaml``): files are read
  in order (config.yaml, then ``config.yaml.d/*.yaml|*.yml`` as ``os.ReadDir`` lists them, i.e. sorted by
  name, suffix matched case-insensitively); a key's *first* appearance fixes its position, its *last*
  value wins; ``key+:`` appends (``toSlice(old) + toSlice(new)``) when the key was already set and
  behaves like ``key:`` otherwise. Every value then becomes ``--key=value`` (one per list element, none
  for an empty list, ``-k=`` for one-letter keys), inserted right after ``server`` and before the CLI
  arguments. For ``server`` the config-file flags that are not server flags are dropped with
  ``Unknown flag --foo found in config.yaml, skipping`` (logrus warning; the drop-in file name is never
  named). CLI arguments are not filtered: an unknown CLI flag is a hard error.
* K: pkg/configfilearg/convert.go: values are rendered with ``fmt.Sprint`` and ``strings.TrimSpace``;
  gopkg.in/yaml.v2 leaves timestamp-looking scalars as strings when decoding into ``interface{}``.
* K: pkg/cli/cmds/server.go, agent.go (older revisions) and the ``k3s server --help`` dump in
  k3s-io/docs docs/cli/server.md for the flag types (bool flags take no ``value``) and defaults.
  K3s moved to urfave/cli v2 with ``DisableSliceFlagSeparator`` in 2025 (k3s-io/k3s#11830, #12030/#12031):
  a repeated string flag keeps its last value, a string-slice flag accumulates every value in order
  (config file first, then CLI), and commas are *not* split by the CLI parser; K3s splits some keys
  itself (``util.SplitStringSlice``, see ``COMMA_SPLIT``).
* K: pkg/daemons/config/types.go (``CriticalControlArgs`` with ``cli`` tags) and
  pkg/cluster/bootstrap.go ``compareConfig`` (``critical configuration mismatched: <tag>`` warnings, then
  ``critical configuration value mismatch between servers``).

Not confirmed, and how it is handled here:

* The docs (docs.k3s.io installation/configuration, k3s-io/k3s#2228) say CLI values of a repeatable
  flag *overwrite* the config-file list. The parser code prepends the config values as ordinary flags,
  and neither urfave/cli v1 nor v2 resets a slice that was set by an earlier flag, so both are kept.
  This module follows the code (config values, then CLI values); no live K3s was run to settle it.
* Types of ``etcd-s3-retention``, ``etcd-snapshot-reconcile-interval``, ``supervisor-port``,
  ``apiserver-port`` and ``agent`` were not read in a v1.34 source (inferred from the Go struct
  fields / names); ``agent`` is treated as a string.
"""
from __future__ import annotations

import ipaddress
import math
import re
from datetime import timedelta
from pathlib import Path

import yaml

DEFAULT_CONFIG = "/etc/rancher/k3s/config.yaml"
KEYS_FILE = Path(__file__).resolve().parents[2].parent / "shared/specs/k3s/config-keys-v1.34.txt"

UNKNOWN_FLAG = "Unknown flag {flag} found in config.yaml, skipping"
CRITICAL_FIELD_WARNING = "critical configuration mismatched: {tag}"
CRITICAL_MISMATCH = "critical configuration value mismatch between servers"
# How the fatal line reads in the journal (user log of a v1.3x join with secrets-encryption only on
# the first server): main's "Error: " + "preparing server: " + "failed to bootstrap cluster data: " +
# "failed to validate server configuration: " + the error above.
CRITICAL_MISMATCH_FATAL = ("Error: preparing server: failed to bootstrap cluster data: "
                           "failed to validate server configuration: " + CRITICAL_MISMATCH)

# -- flag types -------------------------------------------------------------------------------------
_BOOL = ("alsologtostderr cluster-init cluster-reset debug disable-agent disable-apiserver disable-apiserver-lb "
         "disable-cloud-controller disable-controller-manager disable-default-registry-endpoint disable-etcd "
         "disable-helm-controller disable-kube-proxy disable-network-policy disable-scheduler docker "
         "embedded-registry enable-pprof etcd-disable-snapshots etcd-expose-metrics etcd-s3 etcd-s3-insecure "
         "etcd-s3-skip-ssl-verify etcd-snapshot-compress flannel-external-ip flannel-ipv6-masq kine-tls "
         "nonroot-devices prefer-bundled-bin protect-kernel-defaults rootless secrets-encryption selinux "
         "supervisor-metrics tls-san-security with-node-id")
_INT = "advertise-port apiserver-port etcd-s3-retention etcd-snapshot-retention https-listen-port lb-server-port supervisor-port v"
_DURATION = "etcd-s3-timeout etcd-snapshot-reconcile-interval"
_SLICE = ("airgap-extra-registry cluster-cidr cluster-dns disable etcd-arg kube-apiserver-arg kube-cloud-controller-arg "
          "kube-cloud-controller-manager-arg kube-controller-arg kube-controller-manager-arg kube-proxy-arg "
          "kube-scheduler-arg kubelet-arg node-external-dns node-external-ip node-internal-dns node-ip node-label "
          "node-taint service-cidr tls-san")
_STRING = ("advertise-address agent agent-token agent-token-file apiserver-bind-address bind-address cluster-domain "
           "cluster-reset-restore-path container-runtime-endpoint data-dir datastore-cafile datastore-certfile "
           "datastore-endpoint datastore-keyfile default-local-storage-path default-runtime egress-selector-mode "
           "etcd-s3-access-key etcd-s3-bucket etcd-s3-bucket-lookup-type etcd-s3-config-secret etcd-s3-endpoint "
           "etcd-s3-endpoint-ca etcd-s3-folder etcd-s3-proxy etcd-s3-region etcd-s3-secret-key etcd-s3-session-token "
           "etcd-snapshot-dir etcd-snapshot-name etcd-snapshot-schedule-cron flannel-backend flannel-cni-conf "
           "flannel-conf flannel-iface helm-job-image image-credential-provider-bin-dir image-credential-provider-config "
           "image-service-endpoint log node-name pause-image private-registry resolv-conf secrets-encryption-provider "
           "server service-node-port-range servicelb-namespace snapshotter system-default-registry token token-file "
           "vmodule vpn-auth vpn-auth-file write-kubeconfig write-kubeconfig-group write-kubeconfig-mode")

FLAG_TYPES: dict[str, str] = {}
for _kind, _names in (("bool", _BOOL), ("int", _INT), ("duration", _DURATION), ("slice", _SLICE), ("string", _STRING)):
    FLAG_TYPES.update(dict.fromkeys(_names.split(), _kind))

# Short aliases of server flags ("data-dir,d", "token,t", "server,s", "write-kubeconfig,o", "node-ip,i",
# "log,l", "config,c": K: server.go/agent.go/log.go). ``config`` is itself a server flag, so K3s accepts
# it in config.yaml without a warning, though the key list file leaves it out.
ALIASES = {"d": "data-dir", "t": "token", "s": "server", "o": "write-kubeconfig", "i": "node-ip", "l": "log", "c": "config"}
EXTRA_FLAGS = {"config": "string"}

DEFAULTS: dict[str, object] = {
    "data-dir": "/var/lib/rancher/k3s", "https-listen-port": 6443, "cluster-domain": "cluster.local",
    "service-node-port-range": "30000-32767", "flannel-backend": "vxlan", "egress-selector-mode": "agent",
    "servicelb-namespace": "kube-system", "etcd-snapshot-name": "etcd-snapshot",
    "etcd-snapshot-schedule-cron": "0 */12 * * *", "etcd-snapshot-retention": 5,
    "etcd-s3-endpoint": "s3.amazonaws.com", "etcd-s3-region": "us-east-1", "etcd-s3-timeout": timedelta(minutes=5),
    "tls-san-security": True, "secrets-encryption-provider": "aescbc", "lb-server-port": 6444,
    "private-registry": "/etc/rancher/k3s/registries.yaml", "snapshotter": "overlayfs", "v": 0,
}
# K3s splits these on commas after parsing (``util.SplitStringSlice``: cluster-cidr/service-cidr/
# cluster-dns in K: pkg/cli/server/server.go; tls-san since k3s-io/k3s#7365; node-ip/node-external-ip
# via GetHostnameAndIPs and k3s-io/k3s#13989; disable per the docs' "--disable=traefik,servicelb").
COMMA_SPLIT = {"cluster-cidr", "service-cidr", "cluster-dns", "tls-san", "node-ip", "node-external-ip", "disable"}

# CriticalControlArgs field order and ``cli`` tags (K: pkg/daemons/config/types.go). A 2024 revision
# also has FlannelIPMasqDisableRandomFully ``flannel-ip-masq-disable-random-fully``; no v1.34 flag sets it
# (it is not in the v1.34 key list), so it can never differ between two v1.34 servers and is left out.
CRITICAL_CONTROL_ARGS = (
    ("ClusterDNSs", "cluster-dns"), ("ClusterIPRanges", "cluster-cidr"), ("ClusterDNS", "cluster-dns"),
    ("ClusterDomain", "cluster-domain"), ("ClusterIPRange", "cluster-cidr"), ("DisableCCM", "disable-cloud-controller"),
    ("DisableHelmController", "disable-helm-controller"), ("DisableNPC", "disable-network-policy"),
    ("DisableServiceLB", "disable-service-lb"), ("EncryptSecrets", "secrets-encryption"),
    ("EncryptProvider", "secrets-encryption-provider"), ("EmbeddedRegistry", "embedded-registry"),
    ("FlannelBackend", "flannel-backend"), ("FlannelIPv6Masq", "flannel-ipv6-masq"),
    ("FlannelExternalIP", "flannel-external-ip"), ("EgressSelectorMode", "egress-selector-mode"),
    ("ServiceIPRange", "service-cidr"), ("ServiceIPRanges", "service-cidr"), ("SupervisorMetrics", "supervisor-metrics"),
)


def known_keys(path: str | Path | None = None) -> set[str]:
    """The v1.34 config keys: the names in ``config-keys-v1.34.txt`` (one a line, ``#`` comments).

    ``path`` defaults to the spec file in the steering repo's ``shared/``; where that file is absent
    (an image built without ``shared/``) the embedded ``FLAG_TYPES`` table, kept equal to the file by a
    unit test, stands in for it.
    """
    path = Path(path) if path is not None else KEYS_FILE
    if not path.is_file():
        return set(FLAG_TYPES)
    lines = (line.strip() for line in path.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


# -- YAML as gopkg.in/yaml.v2 reads it ----------------------------------------------------------------
class _GoYamlLoader(yaml.SafeLoader):
    """SafeLoader without the timestamp resolver: yaml.v2 keeps ``2024-01-01`` a string in ``interface{}``."""


_GoYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _read_pairs(text: str, name: str) -> list[tuple[object, object]]:
    """Top-level ``(key, value)`` pairs in document order, duplicates kept (yaml.v2 ``MapSlice``)."""
    loader = _GoYamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return []
        if not isinstance(node, yaml.MappingNode):
            raise ValueError(f"{name}: yaml: unmarshal errors: cannot unmarshal {node.tag} into yaml.MapSlice")
        return [(loader.construct_object(k, deep=True), loader.construct_object(v, deep=True)) for k, v in node.value]
    finally:
        loader.dispose()


def go_string(value: object) -> str:
    """``convert.ToString``: ``fmt.Sprint`` of the value (first element of a list), whitespace-trimmed."""
    if isinstance(value, list):
        value = value[0] if value else None
    return _sprint(value).strip()


def _sprint(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        if math.isnan(value):
            return "NaN"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{_sprint(k)}:{_sprint(v)}" for k, v in sorted(value.items(), key=lambda i: _sprint(i[0]))) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_sprint(v) for v in value) + "]"
    return str(value)


def _to_slice(value: object) -> list:
    """``toSlice``: a string or list as is; anything else rendered, and dropped when empty."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return value
    text = go_string(value)
    return [text] if text else []


def config_files(config_path: str | Path = DEFAULT_CONFIG, dropin_dir: str | Path | None = None) -> list[Path]:
    """``dotDFiles`` + ``readConfigFile``: config.yaml (if present), then ``<config>.d/*.yaml|*.yml`` by name."""
    config_path = Path(config_path)
    dropin_dir = Path(dropin_dir) if dropin_dir is not None else Path(str(config_path) + ".d")
    dropins = []
    if dropin_dir.is_dir():
        dropins = sorted((p for p in dropin_dir.iterdir()
                          if not p.is_dir() and p.name.lower().endswith((".yaml", ".yml"))), key=lambda p: p.name)
    return ([config_path] if config_path.is_file() else []) + dropins


def config_args(files: list[Path]) -> list[str]:
    """The ``--key=value`` arguments K3s makes of the config files (``readConfigFile``).

    Last value wins, first appearance keeps the position, ``key+:`` appends to an earlier value
    (a scalar becomes a two-element list, which for a string flag means the later one wins).
    """
    order: list[str] = []
    values: dict[str, object] = {}
    for path in files:
        for raw_key, value in _read_pairs(path.read_text(), str(path)):
            key = go_string(raw_key)
            append = key.endswith("+")
            key = key.removesuffix("+")
            if key not in values:
                order.append(key)
            if append and key in values:
                values[key] = list(_to_slice(values[key])) + list(_to_slice(value))
            else:
                values[key] = value
    args = []
    for key in order:
        prefix = "-" if len(key) == 1 else "--"
        value = values[key]
        items = value if isinstance(value, list) else [value]
        args.extend(f"{prefix}{key}={go_string(item)}" for item in items)
    return args


def strip_invalid_flags(args: list[str], valid: set[str]) -> tuple[list[str], list[str]]:
    """``stripInvalidFlags``: keep the config-file flags ``server`` knows, warn about (and drop) the rest."""
    kept, warnings = [], []
    for arg in args:
        match = re.match(r"^-+([^=]*)=", arg)
        name = match.group(1) if match else arg
        if name in valid:
            kept.append(arg)
        else:
            warnings.append(UNKNOWN_FLAG.format(flag=arg.split("=")[0]))
    return kept, warnings


def server_flag_names(keys_path: str | Path | None = None) -> set[str]:
    """Every name ``k3s server`` accepts: the v1.34 keys, their one-letter aliases and ``config``."""
    return known_keys(keys_path) | set(ALIASES) | set(EXTRA_FLAGS)


def flag_type(name: str) -> str:
    """The urfave/cli flag kind of a (possibly aliased) flag name: bool, int, duration, slice or string."""
    name = ALIASES.get(name, name)
    return FLAG_TYPES.get(name) or EXTRA_FLAGS.get(name, "string")


def parse_bool(text: str, flag: str) -> bool:
    """Go ``strconv.ParseBool`` as the flag package uses it, with the flag package's error text."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f'invalid boolean value "{text}" for -{flag}: parse error')


def parse_int(text: str, flag: str) -> int:
    """Go ``strconv.ParseInt(s, 0, 64)`` (base prefixes 0x, 0o, 0b and a leading 0 for octal)."""
    body = text.lstrip("+-")
    try:
        if re.fullmatch(r"0[0-7_]+", body):
            value = int(body, 8)
            return -value if text.startswith("-") else value
        return int(text, 0)
    except ValueError:
        raise ValueError(f'invalid value "{text}" for flag -{flag}: parse error') from None


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str, flag: str) -> timedelta:
    """Go ``time.ParseDuration`` ("5m", "1h30m", "1.5s", "0")."""
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body == "0":
        return timedelta(0)
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)", body)
    if not body or "".join(n + u for n, u in parts) != body:
        raise ValueError(f'invalid value "{text}" for flag -{flag}: parse error')
    return timedelta(seconds=sign * sum(float(n) * _DURATION_UNITS[u] for n, u in parts))


def split_string_slice(values: list[str]) -> list[str]:
    """``util.SplitStringSlice``: each element split on commas, in order."""
    return [part for value in values for part in value.split(",")]


def parse_flags(args: list[str], valid: set[str]) -> dict[str, object]:
    """Apply ``--flag=value`` / ``--flag value`` / bool ``--flag`` arguments as urfave/cli v2 does.

    Scalars: the last one wins. Slices: every value, in order. An unknown flag raises Go's
    ``flag provided but not defined: -name``. Keys are the long flag names.
    """
    result: dict[str, object] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            raise ValueError(f"unexpected argument {arg!r}")
        name, eq, value = arg.lstrip("-").partition("=")
        if name not in valid:
            raise ValueError(f"flag provided but not defined: -{name}")
        kind = flag_type(name)
        long = ALIASES.get(name, name)
        if not eq:
            if kind == "bool":
                value = "true"
            elif i < len(args):
                value, i = args[i], i + 1
            else:
                raise ValueError(f"flag needs an argument: -{name}")
        if kind == "bool":
            result[long] = parse_bool(value, name)
        elif kind == "int":
            result[long] = parse_int(value, name)
        elif kind == "duration":
            result[long] = parse_duration(value, name)
        elif kind == "slice":
            result.setdefault(long, []).append(value)
        else:
            result[long] = value
    return result


def load(config_path: str | Path = DEFAULT_CONFIG, dropin_dir: str | Path | None = None, argv: list[str] | tuple = (),
         keys_path: str | Path | None = None) -> dict:
    """What ``k3s server [argv]`` makes of its config file, drop-ins and command line.

    Returns ``{"config": {flag: value}, "args": [...], "warnings": [...], "files": [...]}``:
    ``args`` is the argument list after the config-file flags were inserted before ``argv`` and the
    unknown ones stripped; ``config`` holds only the flags that were set (see ``DEFAULTS`` and
    ``effective``), typed (bool/int/timedelta/str/list), with the ``COMMA_SPLIT`` keys split as K3s
    splits them. ``--config``/``-c`` in ``argv`` selects another config file, as in K3s.
    """
    argv = list(argv)
    valid = server_flag_names(keys_path)
    for i, arg in enumerate(argv):
        if arg in ("--config", "-c") and i + 1 < len(argv):
            config_path = argv[i + 1]
        elif arg.startswith(("--config=", "-c=")):
            config_path = arg.split("=", 1)[1]
    files = config_files(config_path, dropin_dir)
    from_files, warnings = strip_invalid_flags(config_args(files), valid)
    args = from_files + argv
    config = parse_flags(args, valid)
    for key in COMMA_SPLIT & config.keys():
        config[key] = split_string_slice(config[key])
    return {"config": config, "args": args, "warnings": warnings, "files": [str(f) for f in files]}


def effective(config: dict) -> dict:
    """The value of every typed flag: what was set, else K3s's default (False, "", [] or ``DEFAULTS``)."""
    empty = {"bool": False, "int": 0, "duration": timedelta(0), "slice": [], "string": ""}
    result = {key: DEFAULTS.get(key, empty[kind]) for key, kind in FLAG_TYPES.items()}
    result.update(config)
    return result


def critical_args(config: dict) -> dict[str, object]:
    """The ``CriticalControlArgs`` K3s derives from a server's flags (K: pkg/cli/server/server.go).

    cluster-cidr/service-cidr default to 10.42.0.0/16 and 10.43.0.0/16 and are normalised like
    ``net.ParseCIDR``; the first range is the "single" one (first defined family, newest server.go);
    cluster-dns defaults to the 10th address of each service range; ``disable-service-lb`` is
    ``servicelb`` in ``disable``.
    """
    cfg = effective(config)

    def nets(key, default):
        values = split_string_slice(cfg[key]) or [default]
        return [str(ipaddress.ip_network(v.strip(), strict=False)) for v in values]

    cluster, service = nets("cluster-cidr", "10.42.0.0/16"), nets("service-cidr", "10.43.0.0/16")
    dns = [str(ipaddress.ip_address(v.strip())) for v in split_string_slice(cfg["cluster-dns"])]
    dns = dns or [str(ipaddress.ip_network(n)[10]) for n in service]
    return {
        "ClusterDNSs": dns, "ClusterIPRanges": cluster, "ClusterDNS": dns[0], "ClusterDomain": cfg["cluster-domain"],
        "ClusterIPRange": cluster[0], "DisableCCM": cfg["disable-cloud-controller"],
        "DisableHelmController": cfg["disable-helm-controller"], "DisableNPC": cfg["disable-network-policy"],
        "DisableServiceLB": "servicelb" in split_string_slice(cfg["disable"]),
        "EncryptSecrets": cfg["secrets-encryption"], "EncryptProvider": cfg["secrets-encryption-provider"],
        "EmbeddedRegistry": cfg["embedded-registry"], "FlannelBackend": cfg["flannel-backend"],
        "FlannelIPv6Masq": cfg["flannel-ipv6-masq"], "FlannelExternalIP": cfg["flannel-external-ip"],
        "EgressSelectorMode": cfg["egress-selector-mode"], "ServiceIPRange": service[0], "ServiceIPRanges": service,
        "SupervisorMetrics": cfg["supervisor-metrics"],
    }


def critical_mismatch(mine: dict, theirs: dict) -> list[str]:
    """What a joining server logs when its critical args differ from the cluster's (``compareConfig``).

    ``mine`` is the joiner's config, ``theirs`` the existing server's (both as ``load()["config"]``).
    Returns ``[]`` when they match; otherwise one ``critical configuration mismatched: <cli tag>``
    warning per differing field, in struct order, then ``CRITICAL_MISMATCH_FATAL``. Simplification:
    go-test/deep reports slice and IPNet fields by a Go path (e.g. ``ClusterDNSs.slice[0]``) for which
    the tag lookup fails, so real K3s logs that path instead of the tag for those; not reproduced.
    """
    a, b = critical_args(mine), critical_args(theirs)
    warnings = [CRITICAL_FIELD_WARNING.format(tag=tag) for field, tag in CRITICAL_CONTROL_ARGS if a[field] != b[field]]
    return warnings + [CRITICAL_MISMATCH_FATAL] if warnings else []
