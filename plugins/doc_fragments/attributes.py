# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The check and diff mode attributes of the collection's modules (each module adds its C(details))."""
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and report what would change, without changing anything.
    support: full
  diff_mode:
    description: Returns details on what changed (or, in check mode, would change) when run with C(--diff).
    support: full
"""
