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

make_venv() {
  local py
  py="$(find_python)"
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$py" -m venv "$VENV" >/dev/null 2>&1; then
      # Debian/Ubuntu ship venv (ensurepip) separately.
      rm -rf "$VENV"
      echo "$py cannot make a virtualenv (no ensurepip): installing Debian's venv package"
      apt_install "python3-venv" || apt_install "python$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv"
      "$py" -m venv "$VENV"
    fi
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
}
