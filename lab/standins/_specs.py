"""Where the stand-ins find their vendor contracts (``shared/specs``): standard library only.

Kept apart from :mod:`lab.standins._openapi` (which needs openapi_schema_validator) so the Kubernetes
stand-in can run where only the node's Debian packages are (the K3s stand-in's zipapp, which sets
``HONEYDUE_SPECS`` to the data it carries: lab/k3s/_data.py).
"""
from __future__ import annotations

import os
from pathlib import Path

_HERE = Path(__file__).resolve()


def specs_dir() -> Path:
    """The vendor contracts: ``$HONEYDUE_SPECS`` or the ``shared/specs`` beside the repo."""
    env = os.environ.get("HONEYDUE_SPECS")
    if env:
        return Path(env)
    repo = _HERE.parents[2]
    for candidate in (repo.parent / "shared" / "specs", repo / "shared" / "specs"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "vendor contracts not found: set HONEYDUE_SPECS or put shared/specs beside the repository")
