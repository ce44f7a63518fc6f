#!/usr/bin/env bash
# Make this checkout runnable on a fresh Debian machine: system packages
# (Java 17, Maven, PostgreSQL 15, Prometheus for the dashboard tests, kcat for the secure
# stack's test, Chromium and its driver for the live page's browser test) when missing,
# then the project's venv.
# Safe to run repeatedly; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_BIN_DIR="${HEAT_POSTGRES_BIN_DIR:-/usr/lib/postgresql/15/bin}"
missing=()
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1 || true)
if [ -z "${java_major}" ] || [ "${java_major}" -lt 17 ]; then missing+=(openjdk-17-jre-headless); fi
command -v mvn >/dev/null 2>&1 || missing+=(maven)
[ -x "${PG_BIN_DIR}/initdb" ] || missing+=(postgresql-15)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client-15)
# Prometheus and promtool: the pipeline-health dashboard and rules run against a real one.
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || missing+=(prometheus)
# kcat: the secure stack's test reads the broker with a client of none of our libraries.
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
# The live page's browser test drives the system's Chromium (never a downloaded one).
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
# A CJK font, so the page's pictures show names like 币安人生USDT as glyphs.
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "missing system packages: ${missing[*]} (install them, e.g. with apt-get)" >&2
    exit 1
  fi
  echo "installing system packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if ! "${PYTHON}" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Python >= 3.11 is required (found $(${PYTHON} --version 2>&1))" >&2
  exit 1
fi
# The venv holds exactly the lock: built anew whenever the lock or the project's
# metadata changed, installed with --require-hashes (nothing unpinned, nothing unhashed).
stamp=.venv/.installed-$(cat requirements/build.txt requirements/dev.txt pyproject.toml benchmarks/pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "${stamp}" ]; then
  echo "installing the project and its locked dependencies into .venv" >&2
  rm -rf .venv
  "${PYTHON}" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps \
    -r requirements/build.txt -r requirements/dev.txt
  # The project itself, editable, built by the locked setuptools (no isolated build env);
  # then the benchmarks, a distribution of their own (the `heat-bench` command).
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e benchmarks
  if ! .venv/bin/python -m pip check >/dev/null; then
    echo "the lock lacks what pyproject.toml requires: run 'make lock' (needs uv) and commit it" >&2
    exit 1
  fi
  touch "${stamp}"
fi
