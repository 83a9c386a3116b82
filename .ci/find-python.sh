# Sourced by .ci/run (and its tests): `find_python` prints the path of a Python >= 3.12 that can make a
# virtual environment, and says on stderr where it found it. It works from a clean environment
# (`env -i`, any HOME): it does not rely on PATH, HOME or pyenv's shell set-up.
#
# Search order:
#   1. $SPARKBANDIT_PYTHON, if set
#   2. python3.12 .. python3.19, python3, python on PATH
#   3. pyenv versions 3.12+: under $PYENV_ROOT, $HOME/.pyenv, /root/.pyenv, the home of the user owning a
#      pyenv found on PATH or in /usr/local, and /home/*/.pyenv
#   4. /usr/local/bin/python3.1[2-9], /usr/bin/python3.1[2-9]
#   5. none: install python3.12 with the system package manager (apt-get, dnf, yum, apk) when running as
#      root (or with password-less sudo) and SPARKBANDIT_NO_INSTALL is not set; else fail with what to do.

_sb_ok() {
  [ -x "$1" ] && "$1" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 12) else 1)' \
    >/dev/null 2>&1
}

_sb_found() {
  echo "found Python $("$1" -c 'import platform; print(platform.python_version())') at $1 ($2)" >&2
  echo "$1"
}

_sb_pyenv_roots() {
  [ -n "${PYENV_ROOT:-}" ] && echo "$PYENV_ROOT"
  [ -n "${HOME:-}" ] && echo "$HOME/.pyenv"
  echo /root/.pyenv
  local p owner home
  for p in "$(command -v pyenv 2>/dev/null)" /usr/local/bin/pyenv /opt/pyenv/bin/pyenv; do
    [ -n "$p" ] && [ -e "$p" ] || continue
    owner="$(stat -c %U "$p" 2>/dev/null)" || continue
    home="$(getent passwd "$owner" 2>/dev/null | cut -d: -f6)"
    [ -n "$home" ] && echo "$home/.pyenv"
    echo "$(cd "$(dirname "$(readlink -f "$p")")/.." 2>/dev/null && pwd)"
  done
  for p in /home/*/.pyenv; do [ -d "$p" ] && echo "$p"; done
}

_sb_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else return 1; fi
  fi
  echo "no Python >= 3.12 found; installing python3.12 with the system package manager" >&2
  if command -v apt-get >/dev/null 2>&1; then
    $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq python3.12 python3.12-venv >&2 || return 1
  elif command -v dnf >/dev/null 2>&1; then
    $sudo dnf install -y -q python3.12 >&2 || return 1
  elif command -v yum >/dev/null 2>&1; then
    $sudo yum install -y -q python3.12 >&2 || return 1
  elif command -v apk >/dev/null 2>&1; then
    $sudo apk add -q python3 py3-pip >&2 || return 1
  else
    return 1
  fi
}

find_python() {
  local c v root
  if [ -n "${SPARKBANDIT_PYTHON:-}" ]; then
    if _sb_ok "$SPARKBANDIT_PYTHON"; then _sb_found "$SPARKBANDIT_PYTHON" "SPARKBANDIT_PYTHON"; return 0; fi
    echo "SPARKBANDIT_PYTHON=$SPARKBANDIT_PYTHON is not a Python >= 3.12 with venv; looking elsewhere" >&2
  fi
  for c in python3.12 python3.13 python3.14 python3.15 python3.16 python3.17 python3.18 python3.19 python3 python; do
    v="$(command -v "$c" 2>/dev/null)" || continue
    if _sb_ok "$v"; then _sb_found "$v" "on PATH"; return 0; fi
  done
  while read -r root; do
    [ -n "$root" ] && [ -d "$root/versions" ] || continue
    for c in $(ls -d "$root"/versions/3.1[2-9]* 2>/dev/null | sort -V); do
      if _sb_ok "$c/bin/python"; then _sb_found "$c/bin/python" "pyenv at $root"; return 0; fi
    done
  done < <(_sb_pyenv_roots | awk '!seen[$0]++')
  for c in /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9]; do
    if _sb_ok "$c"; then _sb_found "$c" "system"; return 0; fi
  done
  if [ -z "${SPARKBANDIT_NO_INSTALL:-}" ] && _sb_install; then
    for c in /usr/bin/python3.1[2-9] /usr/bin/python3; do
      if _sb_ok "$c"; then _sb_found "$c" "installed with the system package manager"; return 0; fi
    done
  fi
  echo "no Python >= 3.12 found (looked on PATH, in pyenv under PYENV_ROOT, ~/.pyenv, /root/.pyenv and" \
       "/home/*/.pyenv, and /usr/bin): install one (pymc >= 6 and arviz >= 1 need it) or set" \
       "SPARKBANDIT_PYTHON=/path/to/python3.12" >&2
  return 2
}
