.PHONY: run test lint bench-index bench-batching bench-e2e bench-sim-eta bench-roads bench-portal bench-failover

# Bring up the whole stack and the live demo city (Ctrl-C stops everything).
run:
	bash infra/bin/run.sh

# The whole test suite against real PostGIS and Redis (installs what is missing first).
test:
	bash infra/bin/test.sh

lint:
	.venv/bin/ruff check .

bench-index:
	.venv/bin/python infra/benchmarks/bench_index.py

bench-batching:
	.venv/bin/python infra/benchmarks/bench_batching.py

bench-e2e:
	.venv/bin/python infra/benchmarks/bench_e2e.py

# Quoted against lived pickup ETA in the simulated demo city, server on the model and then on Valhalla.
bench-sim-eta:
	.venv/bin/python infra/benchmarks/bench_sim_eta.py

# The model against Valhalla on the Helsinki extract: accuracy, the k for road ranking, and what routing costs.
bench-roads:
	.venv/bin/python infra/benchmarks/bench_roads.py

# The members' portal: render time, queries and bytes per page, against the sign-in page in the same run.
bench-portal:
	.venv/bin/python infra/benchmarks/bench_portal.py

# kill -9 of the active dispatch worker, ten times, each to the first offer by its standby (real processes).
bench-failover:
	FAILOVER_KILLS=$${FAILOVER_KILLS:-10} bash infra/bin/test.sh tests/faults/test_dispatch_failover.py -k killed -s -q -p no:cacheprovider
