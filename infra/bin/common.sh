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

# PostGIS (and GDAL/GEOS/PROJ for GeoDjango) from Debian; when asked, Chromium for the browser tests
# (--browser) and nginx for the test that runs the shipped nginx.conf in front of a server (--nginx).
ensure_system_packages() {
    local want=()
    local pgver flag new_nginx=""
    pgver="$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)"
    [ -n "$pgver" ] || pgver=15
    [ -f "/usr/share/postgresql/$pgver/extension/postgis.control" ] || want+=("postgresql-$pgver-postgis-3")
    ldconfig -p | grep -q libgdal || want+=(gdal-bin)
    # WeasyPrint (receipt and statement PDFs) lays text out with Pango, and needs a font to draw it with.
    ldconfig -p | grep -q libpangoft2-1.0 || want+=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0)
    [ -d /usr/share/fonts/truetype/dejavu ] || want+=(fonts-dejavu-core)
    # msgfmt compiles the message catalogues (locale/*/LC_MESSAGES/django.po) into the .mo files Django reads.
    command -v msgfmt >/dev/null || want+=(gettext)
    for flag in "$@"; do
        case "$flag" in
            --browser) command -v chromium >/dev/null || want+=(chromium) ;;
            --nginx) [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || { want+=(nginx); new_nginx=1; } ;;
            *) die "ensure_system_packages: unknown option $flag" ;;
        esac
    done
    if [ "${#want[@]}" -gt 0 ]; then
        log "installing system packages: ${want[*]}"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${want[@]}" >/dev/null
    fi
    # The tests run nginx as a process of their own; the service Debian starts on port 80 is not wanted.
    if [ -n "$new_nginx" ] && command -v systemctl >/dev/null && systemctl is-enabled nginx >/dev/null 2>&1; then
        as_root systemctl disable --now nginx >/dev/null 2>&1 || true
    fi
}

# The message catalogues, compiled from locale/*/LC_MESSAGES/django.po (the .mo files are built, never
# committed: docs/languages.md). compilemessages walks the working directory, so the virtualenv and var/
# (which hold other projects' catalogues) are left out.
compile_catalogues() {
    (cd "$ROOT" && "$PY" manage.py compilemessages --ignore=.venv --ignore=var --ignore=node_modules -v0)
}

# Python 3.12 exactly (pyvalhalla's wheels need it): ROCHDALE_PYTHON, python3.12 on PATH, or pyenv's 3.12.x.
find_python312() {
    local candidate
    for candidate in "${ROCHDALE_PYTHON:-}" "$(command -v python3.12 || true)" \
        $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python3.12 2>/dev/null | sort -V -r); do
        [ -n "$candidate" ] && [ -x "$candidate" ] || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

# The virtualenv and the project, reinstalled only when pyproject.toml changes.
ensure_venv() {
    if [ -x "$PY" ] && ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
        log "the virtualenv in .venv is not Python 3.12: recreating it"
        rm -rf "$VENV"
    fi
    if [ ! -x "$PY" ]; then
        local python312
        python312="$(find_python312)" || die "Python 3.12 is required and was not found: install it (pyenv install 3.12) or set ROCHDALE_PYTHON to a python3.12"
        log "creating virtualenv in .venv with $python312"
        "$python312" -m venv "$VENV"
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

# The official AsyncAPI parser that tests/contract validates docs/asyncapi.yaml with: npm packages pinned by
# infra/asyncapi/package-lock.json, reinstalled only when the lock file changes (no install scripts run).
# Node.js and npm come from Debian when the machine has none.
ensure_asyncapi_parser() {
    local dir="$ROOT/infra/asyncapi"
    if ! command -v npm >/dev/null; then
        log "installing system packages: nodejs npm"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nodejs npm >/dev/null
    fi
    local stamp="$dir/node_modules/.rochdale-installed"
    local digest
    digest="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
        log "installing the AsyncAPI parser into infra/asyncapi/node_modules"
        (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
        echo "$digest" > "$stamp"
    fi
}

export DATABASE_URL="${DATABASE_URL:-postgis://postgres@localhost:5432/rochdale}"
export REDIS_URL="${REDIS_URL:-redis://localhost:6379/0}"
export DJANGO_SETTINGS_MODULE=backend.settings
