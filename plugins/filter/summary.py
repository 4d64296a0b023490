# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run summary (playbooks/summary.yml): what the summary read, as the lines an operator reads.
The logic is in module_utils/_run_summary.py; it never raises, so a summary never fails a run."""
from __future__ import annotations

from ansible_collections.honeydue.infra.plugins.module_utils._run_summary import summary_lines


def run_summary(reads):
    """The summary's lines, from the registered reads (see the filter's documentation)."""
    return summary_lines(reads)


class FilterModule:
    """The run summary."""

    def filters(self):
        return {"run_summary": run_summary}
