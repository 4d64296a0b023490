#!/usr/bin/env bash
# `ansible-test sanity` for this collection (`make sanity`), offline apart from PyPI.
#
#   scripts/ansible-sanity.sh [--junit FILE] [ansible-test sanity arguments...]
#
# ansible-test only runs inside .../ansible_collections/<namespace>/<name>/ in a git repository,
# and refuses the committed collections/ link. So this copies what the collection ships (galaxy.yml
# minus its build_ignore, plus tests/sanity for the ignore file) to
# .cache/sanity/ansible_collections/honeydue/infra, makes that copy a git repository of its own and
# runs `ansible-test sanity --python 3.13` there; the exit code is ansible-test's.
#
# The sanity virtualenvs (~/.ansible/test/venv, reused between runs) bootstrap pip with a script
# ansible-test downloads from ci-files.testing.ansible.com, which the build machines cannot reach.
# When that script is not cached yet, a stand-in is written to ansible-test's cache path: it
# installs pip from the interpreter's own ensurepip and then the pinned pip from PyPI.
#
# --junit FILE merges ansible-test's per-test JUnit reports into FILE (for scripts/test-summary.py).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN="$REPO/.venv/bin"
PY="$BIN/python"
DEST="$REPO/.cache/sanity/ansible_collections/honeydue/infra"
PYTHON_VERSION=3.13

junit=""
if [ "${1:-}" = "--junit" ]; then
  junit=$2
  shift 2
  case "$junit" in /*) ;; *) junit="$PWD/$junit" ;; esac
fi

[ -x "$BIN/ansible-test" ] || { echo "sanity: $BIN/ansible-test missing; run make venv" >&2; exit 1; }
export PATH="$BIN:$PATH"
unset ANSIBLE_CONFIG  # the checkout's ansible.cfg points at collections/, which ansible-test refuses

# 1. The pip bootstrap ansible-test wants (the version is pinned in ansible_test itself).
pip_version=$("$PY" - <<'EOF'
import pathlib, re, ansible_test
src = pathlib.Path(ansible_test.__file__).parent.joinpath("_internal", "python_requirements.py").read_text()
print(re.search(r"default_packages = dict\(\s*pip='([0-9.]+)'", src).group(1))
EOF
)
shim="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [ ! -s "$shim" ]; then
  mkdir -p "$(dirname "$shim")"
  cat > "$shim.tmp" <<'EOF'
# Stand-in for get-pip.py (written by honeydue.infra scripts/ansible-sanity.sh): ci-files.testing.ansible.com
# is unreachable here, so pip comes from ensurepip, then the requested packages from the package index.
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
EOF
  mv "$shim.tmp" "$shim"
  echo "sanity: wrote the pip $pip_version bootstrap stand-in $shim"
fi

# 2. A fresh copy of what the collection ships, as its own git repository.
rm -rf "$DEST"
mkdir -p "$DEST"
"$PY" - "$REPO" "$DEST" <<'EOF'
import fnmatch, shutil, sys
from pathlib import Path

import yaml

repo, dest = Path(sys.argv[1]), Path(sys.argv[2])
ignore = yaml.safe_load((repo / "galaxy.yml").read_text()).get("build_ignore") or []
ignore += ["*.pyc", "__pycache__", "tests/output"]  # ansible-galaxy leaves these out too
keep = ["tests/sanity"]  # the ignore file: not shipped, but sanity reads it


def ignored(rel):
    if any(rel == k or rel.startswith(k + "/") or k.startswith(rel + "/") for k in keep):
        return False  # inside tests/sanity, or on the way to it
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]  # tests/unit is out because tests is
    return any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p.rsplit("/", 1)[-1], pat.removeprefix("**/"))
               for p in prefixes for pat in ignore)


def walk(src, rel=""):
    for entry in sorted(src.iterdir()):
        sub = f"{rel}/{entry.name}" if rel else entry.name
        if ignored(sub):
            continue
        if entry.is_dir() and not entry.is_symlink():
            walk(entry, sub)
        elif entry.is_file():
            (dest / sub).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(entry, dest / sub)


walk(repo)
EOF
git -C "$DEST" init -q
git -C "$DEST" add -A

# 3. Sanity, on this Python only (no Docker, no other interpreters here).
cd "$DEST"
args=(sanity --python "$PYTHON_VERSION" --color no)
[ -z "$junit" ] || args+=(--junit)
rc=0
ansible-test "${args[@]}" "$@" || rc=$?

if [ -n "$junit" ]; then
  mkdir -p "$(dirname "$junit")"
  "$PY" - "$DEST/tests/output/junit" "$junit" <<'EOF'
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

merged = ET.Element("testsuites", name="ansible-test sanity")
for report in sorted(Path(sys.argv[1]).glob("*.xml")):
    merged.extend(ET.parse(report).getroot().iter("testsuite"))
ET.ElementTree(merged).write(sys.argv[2], encoding="unicode", xml_declaration=True)
EOF
fi
exit "$rc"
