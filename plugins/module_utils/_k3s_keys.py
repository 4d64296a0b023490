# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every config key `k3s server` v1.34 defines. K3s itself only warns about an unknown key in
config.yaml and skips it, so the collection refuses unknown keys before rendering. Shipped with the
collection (operators have no ../shared); tests/unit/test_k3s_config.py keeps it equal to
../shared/specs/k3s/config-keys-v1.34.txt.
"""
from __future__ import annotations

SERVER_KEYS_V1_34 = frozenset((
    "advertise-address", "advertise-port", "agent", "agent-token", "agent-token-file", "airgap-extra-registry",
    "alsologtostderr", "apiserver-bind-address", "apiserver-port", "bind-address", "cluster-cidr", "cluster-dns",
    "cluster-domain", "cluster-init", "cluster-reset", "cluster-reset-restore-path", "container-runtime-endpoint",
    "data-dir", "datastore-cafile", "datastore-certfile", "datastore-endpoint", "datastore-keyfile", "debug",
    "default-local-storage-path", "default-runtime", "disable", "disable-agent", "disable-apiserver",
    "disable-apiserver-lb", "disable-cloud-controller", "disable-controller-manager",
    "disable-default-registry-endpoint", "disable-etcd", "disable-helm-controller", "disable-kube-proxy",
    "disable-network-policy", "disable-scheduler", "docker", "egress-selector-mode", "embedded-registry",
    "enable-pprof", "etcd-arg", "etcd-disable-snapshots", "etcd-expose-metrics", "etcd-s3", "etcd-s3-access-key",
    "etcd-s3-bucket", "etcd-s3-bucket-lookup-type", "etcd-s3-config-secret", "etcd-s3-endpoint",
    "etcd-s3-endpoint-ca", "etcd-s3-folder", "etcd-s3-insecure", "etcd-s3-proxy", "etcd-s3-region",
    "etcd-s3-retention", "etcd-s3-secret-key", "etcd-s3-session-token", "etcd-s3-skip-ssl-verify", "etcd-s3-timeout",
    "etcd-snapshot-compress", "etcd-snapshot-dir", "etcd-snapshot-name", "etcd-snapshot-reconcile-interval",
    "etcd-snapshot-retention", "etcd-snapshot-schedule-cron", "flannel-backend", "flannel-cni-conf", "flannel-conf",
    "flannel-external-ip", "flannel-iface", "flannel-ipv6-masq", "helm-job-image", "https-listen-port",
    "image-credential-provider-bin-dir", "image-credential-provider-config", "image-service-endpoint", "kine-tls",
    "kube-apiserver-arg", "kube-cloud-controller-arg", "kube-cloud-controller-manager-arg", "kube-controller-arg",
    "kube-controller-manager-arg", "kube-proxy-arg", "kube-scheduler-arg", "kubelet-arg", "lb-server-port", "log",
    "node-external-dns", "node-external-ip", "node-internal-dns", "node-ip", "node-label", "node-name", "node-taint",
    "nonroot-devices", "pause-image", "prefer-bundled-bin", "private-registry", "protect-kernel-defaults",
    "resolv-conf", "rootless", "secrets-encryption", "secrets-encryption-provider", "selinux", "server",
    "service-cidr", "service-node-port-range", "servicelb-namespace", "snapshotter", "supervisor-metrics",
    "supervisor-port", "system-default-registry", "tls-san", "tls-san-security", "token", "token-file", "v",
    "vmodule", "vpn-auth", "vpn-auth-file", "with-node-id", "write-kubeconfig", "write-kubeconfig-group",
    "write-kubeconfig-mode",
))

# Settings K3s requires to match on every server (CriticalControlArgs, k3s-io/k3s
# pkg/daemons/config/types.go): a joining server with another value fails to start.
CRITICAL_KEYS = (
    "cluster-cidr", "service-cidr", "cluster-dns", "cluster-domain", "disable-cloud-controller",
    "disable-helm-controller", "disable-network-policy", "disable", "secrets-encryption",
    "secrets-encryption-provider", "embedded-registry", "flannel-backend", "flannel-ipv6-masq",
    "flannel-external-ip", "egress-selector-mode", "supervisor-metrics",
)
