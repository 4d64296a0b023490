#!/usr/bin/env bash
# Print the newest CPython >= 3.12 on this machine: python3.N on PATH first, then pyenv's
# installed versions. ansible 14 (ansible-core 2.21) needs Python 3.12 or newer.
# Exit 1 with a message on stderr when there is none.
set -euo pipefail

best="" best_ver=0
consider() {
  local exe=$1 ver
  [ -x "$exe" ] || return 0
  ver=$("$exe" -c 'import sys; print(sys.version_info[0] * 100 + sys.version_info[1])' 2>/dev/null) || return 0
  if [ "$ver" -ge 312 ] && [ "$ver" -gt "$best_ver" ]; then best=$exe best_ver=$ver; fi
}

for minor in 15 14 13 12; do
  exe=$(command -v "python3.$minor" 2>/dev/null || true)
  # pyenv shims answer for every installed version; resolve them to the real interpreter
  if [ -n "$exe" ] && [[ "$exe" == */shims/* ]] && command -v pyenv >/dev/null 2>&1; then
    exe=$(pyenv which "python3.$minor" 2>/dev/null || true)
  fi
  [ -n "$exe" ] && consider "$exe"
done
exe=$(command -v python3 2>/dev/null || true)
[ -n "$exe" ] && consider "$exe"
root=${PYENV_ROOT:-$HOME/.pyenv}
for dir in "$root"/versions/3.*; do
  [ -d "$dir" ] && consider "$dir/bin/python3"
done

if [ -z "$best" ]; then
  echo "pick-python: no Python 3.12 or newer found (looked at python3.12..3.15 and python3 on PATH," >&2
  echo "pick-python: and $root/versions). ansible 14 needs Python >= 3.12: install one" >&2
  echo "pick-python: (e.g. 'pyenv install 3.13' or your distribution's python3.12), or run 'make PYTHON=/path/to/python3.12'." >&2
  exit 1
fi
echo "$best"
