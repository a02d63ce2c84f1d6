#!/usr/bin/env bash
# The README's run command (`make run`): the whole stack and a live demo city, in the foreground.
# PostGIS + Redis (project-local ones under var/ if none answer), migrations, static files, demo data, then
# the ASGI server, a Celery worker and beat, the dispatch worker and its standby, a modest simulation, with prefixed
# logs (honcho). Ctrl-C stops them all. ROCHDALE_PORT (8000) moves the server; ROCHDALE_SIM_DRIVERS,
# ROCHDALE_SIM_RIDERS and ROCHDALE_SIM_SPEEDUP size the simulation (ROCHDALE_SIM_DRIVERS=0 ROCHDALE_SIM_RIDERS=0
# for none). The demo city's road tiles are built (once) so that the server routes on Valhalla.
# ROCHDALE_PAYMENT_PROVIDER=stripe with STRIPE_API_BASE on this machine (http://localhost:8420) takes cards
# against a localstripe that joins the stack (docs/payments.md, "Paying by card in `make run`").
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ensure_system_packages
ensure_venv
cd "$ROOT"

export ROCHDALE_PORT="${ROCHDALE_PORT:-8000}"
# The demo city: drivers are approved as they register, and every simulated app comes from this one
# address, so the per-address sign-up and sign-in limits are opened up. The simulation compresses motion
# (--speedup), so a car legitimately covers ROCHDALE_SIM_SPEEDUP times more ground per second than a real
# one: the plausible-speed check is widened to match. None of this is for production.
export ROCHDALE_AUTO_APPROVE_DRIVERS="${ROCHDALE_AUTO_APPROVE_DRIVERS:-1}"
export ROCHDALE_REGISTER_RATE="${ROCHDALE_REGISTER_RATE:-100000/hour}"
export ROCHDALE_SIGN_IN_RATE_IP="${ROCHDALE_SIGN_IN_RATE_IP:-100000/min}"
export ROCHDALE_SIGN_IN_IP_MAX_FAILURES="${ROCHDALE_SIGN_IN_IP_MAX_FAILURES:-100000}"
export ROCHDALE_SIM_SPEEDUP="${ROCHDALE_SIM_SPEEDUP:-20}"
export ROCHDALE_MAX_PLAUSIBLE_SPEED_MPS="${ROCHDALE_MAX_PLAUSIBLE_SPEED_MPS:-$((ROCHDALE_SIM_SPEEDUP * 30 + 70))}"
export PYTHONUNBUFFERED=1

# Every process of infra/Procfile but localstripe, which payments_setup adds when the stack needs it. One
# Procfile names them all, and honcho starts the ones named on its command line: a process that is not
# wanted cannot simply exit (honcho stops the whole stack when any process ends), and a second Procfile
# would repeat the others' lines.
PROCFILE="$ROOT/infra/Procfile"
mapfile -t PROCESSES < <(sed -n 's/^\([A-Za-z0-9_-]*\):.*/\1/p' "$PROCFILE" | grep -vx localstripe)

# Which provider collects the fares, in one line for the log (PAYMENTS_IN_USE). With
# ROCHDALE_PAYMENT_PROVIDER=stripe and STRIPE_API_BASE on this machine, localstripe joins the stack on the
# URL's port, with the demo's keys where none are set, its store kept under the database's name (an empty
# localstripe would not know the customers and cards the database refers to), and its events delivered to
# our webhook. Without them nothing changes.
payments_setup() {
    local provider="${ROCHDALE_PAYMENT_PROVIDER:-test}"
    local base="${STRIPE_API_BASE:-}"
    if [ "$provider" != stripe ]; then
        PAYMENTS_IN_USE="$provider provider (no card network; ROCHDALE_PAYMENT_PROVIDER=stripe STRIPE_API_BASE=http://localhost:8420 takes cards against localstripe)"
        return
    fi
    if [[ ! "$base" =~ ^[a-z]+://(localhost|127\.0\.0\.1)(:[0-9]+)?(/.*)?$ ]]; then
        [ -n "${STRIPE_API_KEY:-}" ] || die "ROCHDALE_PAYMENT_PROVIDER=stripe needs STRIPE_API_KEY (or STRIPE_API_BASE=http://localhost:8420 for localstripe)"
        PAYMENTS_IN_USE="stripe at ${base:-https://api.stripe.com} (simulated riders cannot save cards there: only an app with Stripe's SDK can)"
        return
    fi
    [[ "$base" =~ ^http://[^/]+:([0-9]+)/?$ ]] || die "STRIPE_API_BASE=$base: localstripe needs plain http and a port, e.g. http://localhost:8420"
    local port="${BASH_REMATCH[1]}"
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port $port (STRIPE_API_BASE=$base) is taken: make run starts its own localstripe there; stop what listens (a localstripe started by hand?) or name another port"
    fi
    [ -x "$VENV/bin/localstripe" ] || die "localstripe is missing from .venv (it is in pyproject.toml's dev extras): rm $VENV/.rochdale-installed and run again"
    export STRIPE_API_KEY="${STRIPE_API_KEY:-sk_test_demo}"
    export STRIPE_PUBLISHABLE_KEY="${STRIPE_PUBLISHABLE_KEY:-pk_test_demo}"
    export STRIPE_WEBHOOK_SECRET="${STRIPE_WEBHOOK_SECRET:-whsec_demo}"
    local database="${DATABASE_URL##*/}"
    export ROCHDALE_LOCALSTRIPE_STORE="${ROCHDALE_LOCALSTRIPE_STORE:-$VAR/localstripe/${database%%\?*}.pickle}"
    PROCESSES+=(localstripe)
    PAYMENTS_IN_USE="stripe against localstripe at $base (started with the stack, its store in $ROCHDALE_LOCALSTRIPE_STORE; events to http://127.0.0.1:$ROCHDALE_PORT/api/v1/payments/stripe/webhook)"
}
payments_setup

"$PY" "$ROOT/infra/bin/services.py"
log "applying migrations"
"$PY" manage.py migrate --noinput -v0
log "compiling the message catalogues"
compile_catalogues
log "collecting static files"
"$PY" manage.py collectstatic --noinput -v0
mkdir -p "$VAR/celery"
# The demo city's streets as an OpenStreetMap extract, built into Valhalla tiles, so the server (whose
# ROCHDALE_ROUTER defaults to auto: Valhalla once the tiles exist) quotes and dispatches on the same roads
# the simulated cars drive. Both steps are idempotent: the same city exports the same bytes, and
# roads_build skips an extract it has built. A co-op's own city (ROCHDALE_ROADS_CITY) is left as built.
ROADS_DIR="${ROCHDALE_ROADS_DIR:-$VAR/roads}"
ROADS_CITY="${ROCHDALE_ROADS_CITY:-demo}"
if [ "$ROADS_CITY" = demo ]; then
    log "exporting the demo city's streets and building their road tiles (skipped when up to date)"
    "$PY" manage.py city_export_osm --out "$ROADS_DIR/demo.osm.pbf" >&2
    "$PY" manage.py roads_build --pbf "$ROADS_DIR/demo.osm.pbf" --name demo >&2
fi
ROUTER_IN_USE="$("$PY" manage.py shell --no-imports -c '
from django.conf import settings
from dispatch.roads.choice import city_tiles, road_router
tiles = city_tiles()
print(f"{road_router().name} (ROCHDALE_ROUTER={settings.ROCHDALE_ROUTER}; {tiles.name} tiles",
      "built" if tiles.exists() else "not built", f"in {tiles.root})")
' 2>/dev/null)" || die "could not tell which router the server will use"
log "router: $ROUTER_IN_USE"
log "payments: $PAYMENTS_IN_USE"
log "seeding the demo city"
SEED_OUTPUT="$("$PY" manage.py seed_demo)"
# seed_demo's report, less its staff sign-in line: that one is printed once, with the map's address below.
printf '%s\n' "$SEED_OUTPUT" | grep -v 'staff sign-in' >&2 || true
CREDENTIALS="$(printf '%s\n' "$SEED_OUTPUT" | grep 'staff sign-in' || true)"

log "live dispatch map: http://127.0.0.1:${ROCHDALE_PORT}/map/  (sign in as staff)"
log "${CREDENTIALS:-staff credentials: see var/demo-credentials.json}"
log "API: http://127.0.0.1:${ROCHDALE_PORT}/api/v1/docs   health: http://127.0.0.1:${ROCHDALE_PORT}/api/v1/health"
# Metrics of every process (Celery's children, the web's workers) are summed from this directory; the files
# of a previous run would count again, so it starts empty (docs/operations.md, "Metrics").
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$VAR/prometheus}"
rm -rf "$PROMETHEUS_MULTIPROC_DIR"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"

log "starting the server, workers and the simulation (Ctrl-C stops everything)"
# Ctrl-C reaches honcho with the terminal's SIGINT (and from the trap below when only this script is
# signalled); honcho then stops every process and exits 130 (143 for SIGTERM), which make would report as
# "Error 130". A stop that was asked for is the normal end of `make run`: exit 0. Anything else, such as a
# process that died on its own and took the stack down, keeps honcho's status.
"$VENV/bin/honcho" start -f "$PROCFILE" -d "$ROOT" "${PROCESSES[@]}" &
HONCHO_PID=$!
STOP_ASKED=""
stop_stack() {
    STOP_ASKED=1
    kill -INT "$HONCHO_PID" 2>/dev/null || true
}
trap stop_stack INT TERM
# `wait` returns early whenever a trapped signal arrives: keep waiting until honcho has stopped them all.
while kill -0 "$HONCHO_PID" 2>/dev/null; do
    wait "$HONCHO_PID" || true
done
STATUS=0
wait "$HONCHO_PID" || STATUS=$?
trap - INT TERM
# 130 and 143 are honcho's own answers to SIGINT and SIGTERM: a stop was asked for even where this shell could
# not trap it (a signal ignored when the script started, as under nohup, cannot be trapped).
if [ "$STATUS" = 130 ] || [ "$STATUS" = 143 ] || { [ -n "$STOP_ASKED" ] && [ "$STATUS" = 0 ]; }; then
    log "stopped"
    exit 0
fi
exit "$STATUS"
