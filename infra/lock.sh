#!/usr/bin/env bash
# The lock: uv.lock (every direct and transitive dependency, with hashes) and the
# requirements/*.txt that pip installs from with --require-hashes, exported from it.
#   infra/lock.sh check    fail with one line when pyproject.toml, uv.lock and the exports disagree
#   infra/lock.sh update   re-lock after a change to pyproject.toml (keeps every other pin)
#   infra/lock.sh upgrade  move every pin to the newest release (as of [tool.uv] exclude-newer)
set -euo pipefail
cd "$(dirname "$0")/.."
# uv: as locked in the venv, else one on PATH (e.g. `pip install uv` before the first lock).
uv="${UV:-$(if [ -x .venv/bin/uv ]; then echo .venv/bin/uv; else command -v uv || echo uv; fi)}"
if ! command -v "${uv}" >/dev/null 2>&1; then
  echo "uv not found: run 'make bootstrap' or 'pip install uv'" >&2
  exit 1
fi

export_to() {  # export_to FILE ARGS...: one requirements file from uv.lock
  local target=$1
  shift
  "${uv}" export --quiet --frozen --no-emit-project --no-header --format requirements-txt "$@" -o "${target}"
}

export_all() {  # export_all DIR
  export_to "$1/runtime.txt" --no-default-groups
  export_to "$1/dev.txt" --no-default-groups --extra test --extra bench
  export_to "$1/build.txt" --only-group build
}

case "${1:-check}" in
  check)
    if ! "${uv}" lock --check --offline --quiet 2>/dev/null; then
      echo "uv.lock does not match pyproject.toml: run 'make lock' and commit uv.lock and requirements/" >&2
      exit 1
    fi
    scratch=$(mktemp -d)
    trap 'rm -rf "${scratch}"' EXIT
    export_all "${scratch}"
    for file in runtime dev build; do
      if ! cmp -s "${scratch}/${file}.txt" "requirements/${file}.txt"; then
        echo "requirements/${file}.txt is not the export of uv.lock: run 'make lock' and commit it" >&2
        exit 1
      fi
    done
    ;;
  update | upgrade)
    if [ "$1" = upgrade ]; then "${uv}" lock --upgrade; else "${uv}" lock; fi
    mkdir -p requirements
    export_all requirements
    ;;
  *)
    echo "usage: infra/lock.sh [check|update|upgrade]" >&2
    exit 2
    ;;
esac
