# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image-reference filters: the app's images come from a private registry, tagged by git short SHA."""
from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

# A registry host: DNS name or IPv4, optional port (Docker's reference grammar, simplified).
_REGISTRY = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?$")
# Repository path components: lowercase alphanumerics with single separators.
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_SHA = re.compile(r"^[0-9a-f]{7,40}$")


def image_ref(name, registry, sha, length=7):
    """Return ``<registry>/<name>:<short sha>`` for a git SHA, validating every part.

    The tag is the first ``length`` characters of ``sha`` (git's default short SHA is 7), so a
    full SHA from CI and a short one typed by an operator give the same reference.
    """
    if not isinstance(name, str) or not name:
        raise AnsibleFilterError("image_ref: the image name must be a non-empty string")
    registry = (registry or "").strip().rstrip("/")
    for prefix in ("https://", "http://"):
        if registry.startswith(prefix):
            registry = registry[len(prefix):]
    if not _REGISTRY.match(registry):
        raise AnsibleFilterError(f"image_ref: {registry!r} is not a registry host[:port]")
    for part in name.split("/"):
        if not _COMPONENT.match(part):
            raise AnsibleFilterError(f"image_ref: {name!r} is not a valid repository name (lowercase, no tag)")
    sha = str(sha).strip().lower()
    if not _SHA.match(sha):
        raise AnsibleFilterError(f"image_ref: {sha!r} is not a git SHA (7 to 40 hex digits)")
    try:
        length = int(length)
    except (TypeError, ValueError):
        raise AnsibleFilterError(f"image_ref: length {length!r} is not a number") from None
    if not 7 <= length <= 40:
        raise AnsibleFilterError("image_ref: length must be between 7 and 40")
    if len(sha) < length:
        raise AnsibleFilterError(f"image_ref: {sha!r} is shorter than the {length} characters asked for")
    return f"{registry}/{name}:{sha[:length]}"


class FilterModule:
    """Image-reference filters."""

    def filters(self):
        return {"image_ref": image_ref}
