# Shared by scripts/demo and scripts/test: find Python >= 3.11 and make the project virtualenv.
# shellcheck shell=bash
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${OPENFLR_VENV:-$ROOT/.venv}"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root (or sudo) to run: $*" >&2; return 1; fi
}

find_python() {
  for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "openflr needs Python 3.11 or newer" >&2; return 1
}

# apt-get install PACKAGE...; fetches the package lists first when there are none (a fresh container has
# none) or when the install fails (stale lists name versions the mirror no longer has).
apt_install() {
  if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then as_root apt-get update -q; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" && return 0
  as_root apt-get update -q && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# One line on stderr before each slow step, so that a first run does not look stuck.
step() { echo "$*" >&2; }

# $1 as the user would type it from here: relative below the current directory, absolute elsewhere.
shown() { case "$1" in "$PWD"/*) echo "${1#"$PWD"/}" ;; *) echo "$1" ;; esac; }

make_venv() {
  local py
  py="$(find_python)"
  if [ ! -x "$VENV/bin/python" ]; then
    step "creating virtualenv $(shown "$VENV") with $py $("$py" -c 'import platform; print(platform.python_version())')"
    if ! "$py" -m venv "$VENV" >/dev/null 2>&1; then
      # Debian/Ubuntu ship venv (ensurepip) separately.
      rm -rf "$VENV"
      echo "$py cannot make a virtualenv (no ensurepip): installing Debian's venv package"
      apt_install "python3-venv" || apt_install "python$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv"
      "$py" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  fi
}

# install_openflr EXTRAS WHAT: pip-install the project (editable) with EXTRAS ("" or "[test]") when the
# virtualenv lacks it or pyproject.toml changed since the last install (a stamp file in the virtualenv
# remembers which); nothing, and nothing said, otherwise.
install_openflr() {
  local stamp="$VENV/.openflr-installed${1:+-${1//[^a-z]/}}"
  if [ -x "$VENV/bin/openflr" ] && [ -e "$stamp" ] && [ ! "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    return 0
  fi
  step "installing $2 into $(shown "$VENV") (about 20 s the first time)"
  "$VENV/bin/python" -m pip install -q -e "$ROOT$1"
  touch "$stamp" "$VENV/.openflr-installed"  # with extras, the plain install is done too
}
