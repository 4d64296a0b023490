"""Scheduled etcd snapshots: K3s's cron expressions and snapshot names."""
from __future__ import annotations

from datetime import datetime

import pytest

from lab.k3s._snapshot import cron_due, snapshot_name


@pytest.mark.parametrize("expr, when, due", [
    ("0 */12 * * *", datetime(2026, 11, 28, 0, 0), True),   # K3s's default: midnight and noon
    ("0 */12 * * *", datetime(2026, 11, 28, 12, 0), True),
    ("0 */12 * * *", datetime(2026, 11, 28, 6, 0), False),
    ("0 */12 * * *", datetime(2026, 11, 28, 12, 1), False),
    ("*/5 * * * *", datetime(2026, 11, 28, 7, 35), True),
    ("*/5 * * * *", datetime(2026, 11, 28, 7, 36), False),
    ("30 2 * * 0", datetime(2026, 11, 29, 2, 30), True),     # Sunday
    ("30 2 * * 0", datetime(2026, 11, 28, 2, 30), False),    # Saturday
    ("15 1-3 1,15 * *", datetime(2026, 11, 15, 2, 15), True),
    ("15 1-3 1,15 * *", datetime(2026, 11, 14, 2, 15), False),
])
def test_cron_expressions(expr, when, due):
    assert cron_due(expr, when) is due


def test_a_cron_needs_five_fields():
    with pytest.raises(ValueError, match="5 fields"):
        cron_due("0 0 */12 * * *", datetime(2026, 1, 1))


def test_snapshot_names_are_name_node_unix_time():
    assert snapshot_name("on-demand", "node1", 1795861966) == "on-demand-node1-1795861966"
