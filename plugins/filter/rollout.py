# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rollout filters: wait for a Deployment, StatefulSet or DaemonSet with ``kubectl rollout status``
semantics (kubernetes.core's k8s ``wait`` does not check that the new replicas exist), revert a
pod template, and summarise what a deploy changed. The logic is in module_utils/_rollout.py."""
from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.honeydue.infra.plugins.module_utils import _rollout


def _wrap(name, func):
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ValueError as exc:
            raise AnsibleFilterError(f"{name}: {exc}") from exc
    run.__name__ = name
    run.__doc__ = func.__doc__
    return run


rollout_status = _wrap("rollout_status", _rollout.rollout_status)
rollout_pending = _wrap("rollout_pending", _rollout.pending)
rollout_revert_patch = _wrap("rollout_revert_patch", _rollout.template_revert_patch)
rollout_summary = _wrap("rollout_summary", _rollout.summary_rows)


class FilterModule:
    """Rollout status, revert and summary."""

    def filters(self):
        return {"rollout_status": rollout_status, "rollout_pending": rollout_pending,
                "rollout_revert_patch": rollout_revert_patch, "rollout_summary": rollout_summary}
