# Shared by the run and test scripts: paths, defaults, and small helpers. Source it, do not run it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VAR="$ROOT/var"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
mkdir -p "$VAR"

log() { printf '\033[1;34m[rochdale]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[rochdale] %s\033[0m\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi
}

# PostGIS (and GDAL/GEOS/PROJ for GeoDjango) from Debian; Chromium for the browser tests when asked.
ensure_system_packages() {
    local want=()
    local pgver
    pgver="$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)"
    [ -n "$pgver" ] || pgver=15
    [ -f "/usr/share/postgresql/$pgver/extension/postgis.control" ] || want+=("postgresql-$pgver-postgis-3")
    ldconfig -p | grep -q libgdal || want+=(gdal-bin)
    if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null; then want+=(chromium); fi
    if [ "${#want[@]}" -gt 0 ]; then
        log "installing system packages: ${want[*]}"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${want[@]}" >/dev/null
    fi
}

# The virtualenv and the project, reinstalled only when pyproject.toml changes.
ensure_venv() {
    if [ ! -x "$PY" ]; then
        log "creating virtualenv in .venv"
        python3 -m venv "$VENV"
        "$PY" -m pip install -q --upgrade pip
    fi
    local stamp="$VENV/.rochdale-installed"
    local digest
    digest="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
        log "installing the project and its dependencies into .venv"
        "$PY" -m pip install -q -e "$ROOT[dev]"
        echo "$digest" > "$stamp"
    fi
}

export DATABASE_URL="${DATABASE_URL:-postgis://postgres@localhost:5432/rochdale}"
export REDIS_URL="${REDIS_URL:-redis://localhost:6379/0}"
export DJANGO_SETTINGS_MODULE=backend.settings
