# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: run_changes
type: aggregate
short_description: What changed in this run, per host, at the end of the playbook
version_added: 0.4.0
author: honeyDue engineering (@honeydue)
description:
  - "Records every task result that reported C(changed) (handlers, and failed tasks that changed
    something, included) and once the playbook ends prints one compact block after the recap: a
    headline such as C(CHANGED IN THIS RUN: 3 tasks on 2 hosts), one line per host with the number
    and the names of its changed tasks (a task changed several times on a host, for example once
    per server behind the gate, shows its count), and the tasks that failed. In check mode the block says what would have changed."
  - A task delegated to another host is counted on the host it ran on.
  - The block completes the run summary of C(playbooks/summary.yml), and is printed also when a
    run stops before the summary.
  - Only task names (as the default callback shows them in its banners) and host names are printed,
    never results, loop items or diffs, so a task with C(no_log) shows nothing beyond its name.
  - With a machine-readable stdout callback (one whose name contains C(json)), the block goes to
    stderr so that stdout stays parseable.
requirements:
  - enable in configuration (C(callbacks_enabled = honeydue.infra.run_changes); the repository's
    ansible.cfg does)
options:
  max_tasks:
    description:
      - Changed tasks listed per host; the rest are counted. At verbosity 1 (C(-v)) and more, every task is listed.
    type: int
    default: 12
    ini:
      - section: callback_run_changes
        key: max_tasks
    env:
      - name: HONEYDUE_RUN_CHANGES_MAX_TASKS
"""

from ansible import constants as C
from ansible.plugins.callback import CallbackBase


def _task_of(result):
    return getattr(result, "task", None) or result._task


def _host_of(result):
    return getattr(result, "host", None) or result._host


def _changed(result):
    is_changed = getattr(result, "is_changed", None)
    if callable(is_changed):
        return bool(is_changed())
    return bool(result._result.get("changed", False))


class CallbackModule(CallbackBase):
    """What changed in this run, per host (task and host names only)."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "honeydue.infra.run_changes"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None, options=None):
        super().__init__(display=display, options=options)
        self._changes = {}  # host -> {task label: count}, in the order first seen
        self._failures = {}  # host -> [task label]

    # -- recording ---------------------------------------------------------------------------
    @staticmethod
    def _label(result):
        task = _task_of(result)
        try:
            name = task.get_name(include_role_fqcn=False)
        except TypeError:  # an older Task.get_name() without the argument
            name = task.get_name()
        return " ".join(str(name).split()) or str(task.action)

    @staticmethod
    def _host(result):
        """Where the task ran: its delegate_to host, else the host."""
        delegated = getattr(_task_of(result), "delegate_to", None)
        return str(delegated) if delegated else _host_of(result).get_name()

    def _record(self, result):
        tasks = self._changes.setdefault(self._host(result), {})
        label = self._label(result)
        tasks[label] = tasks.get(label, 0) + 1

    def v2_runner_on_ok(self, result):
        if _changed(result):
            self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if _changed(result):
            self._record(result)
        if not ignore_errors:
            self._failures.setdefault(self._host(result), []).append(self._label(result))

    def v2_runner_on_async_ok(self, result):
        self.v2_runner_on_ok(result)

    # -- the block ---------------------------------------------------------------------------
    def lines(self, verbosity=0):
        """The block's lines (without printing them)."""
        from ansible import context

        check = bool((context.CLIARGS or {}).get("check"))
        count = sum(n for tasks in self._changes.values() for n in tasks.values())
        what = "WOULD CHANGE IN THIS RUN (check mode)" if check else "CHANGED IN THIS RUN"
        if not count:
            out = [f"{what}: nothing"]
        else:
            out = [f"{what}: {count} task{'s' if count != 1 else ''} on {len(self._changes)} host{'s' if len(self._changes) != 1 else ''}"]
        limit = None if verbosity >= 1 else max(int(self.get_option("max_tasks") or 0), 1)
        for host in sorted(self._changes):
            tasks = [label + (f" (x{n})" if n > 1 else "") for label, n in self._changes[host].items()]
            shown = tasks if limit is None else tasks[:limit]
            more = len(tasks) - len(shown)
            total = sum(self._changes[host].values())
            out.append(f"  {host} ({total}): " + "; ".join(shown) + (f"; ... and {more} more (-v lists all)" if more else ""))
        for host in sorted(self._failures):
            out.append(f"  FAILED on {host}: " + "; ".join(self._failures[host]))
        return out

    def v2_playbook_on_stats(self, stats):
        text = "\n".join(self.lines(self._display.verbosity))
        to_stderr = "json" in str(getattr(C, "DEFAULT_STDOUT_CALLBACK", "") or "").lower()
        color = None if to_stderr else (C.COLOR_ERROR if self._failures else C.COLOR_CHANGED if self._changes else C.COLOR_OK)
        self._display.display("\n" + text + "\n", color=color, stderr=to_stderr)
