#!/usr/bin/env bash
# The README's test command: installs what is missing, then runs the whole suite on real PostGIS and Redis.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ensure_system_packages --browser --nginx
ensure_venv
ensure_asyncapi_parser
# Translated messages: the tests read the compiled catalogues (tests/languages checks the Spanish one).
compile_catalogues
# Tests flush their Redis database between tests, so they get their own (never the demo's db 0).
export REDIS_URL="${ROCHDALE_TEST_REDIS_URL:-redis://localhost:6379/15}"
# Threads that async tests open must not keep connections that block dropping the test database.
export DATABASE_CONN_MAX_AGE=0
"$PY" "$ROOT/infra/bin/services.py"
cd "$ROOT"
# The import contracts (pyproject.toml [tool.importlinter], docs/architecture.md): a back-arrow between the
# layers, a circle or an impure pure rule fails the run before any test does.
"$VENV/bin/lint-imports" --no-logo --no-cache || { echo "lint-imports: an import contract is broken" >&2; exit 1; }
exec "$PY" -m pytest "$@"
