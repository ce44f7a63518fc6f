# Entry points for a fresh machine; each target installs what it needs first.
.PHONY: demo stack test lint bootstrap

bootstrap:
	@infra/bootstrap.sh

## Run the whole pipeline here and watch its heat in the terminal (Ctrl-C stops it);
## e.g. make demo DEMO_ARGS="--replay data/binance-5m" for the real January 2018 bars.
demo: bootstrap
	.venv/bin/heat demo $(DEMO_ARGS)

## Start the local stack (Kafka KRaft + PostgreSQL), migrate the database, show its status.
stack: bootstrap
	.venv/bin/heat stack up
	eval "$$(.venv/bin/heat stack env)" && .venv/bin/heat db migrate
	.venv/bin/heat stack status

## Lint, type-check and run the whole test suite (unit + integration against real services).
test: bootstrap
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/mypy
	.venv/bin/python -m pytest -p no:cacheprovider -n 2 --dist loadfile

lint: bootstrap
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/mypy
