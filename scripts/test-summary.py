#!/usr/bin/env python3
"""Add up the JUnit reports of one `make test` run and print one closing line.

`summary: N passed, N failed, N skipped` — the line CI reads. Exits non-zero when a report is
missing, a test failed, or no test ran at all (a run that tests nothing is a failure here).
"""
from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(paths: list[str]) -> int:
    passed = failed = skipped = 0
    for path in paths:
        p = Path(path)
        if not p.is_file():
            print(f"summary: report {p} is missing", file=sys.stderr)
            return 1
        root = ET.parse(p).getroot()
        for suite in root.iter("testsuite"):
            tests = int(suite.get("tests", 0))
            bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skip = int(suite.get("skipped", 0))
            failed += bad
            skipped += skip
            passed += tests - bad - skip
    print(f"summary: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
