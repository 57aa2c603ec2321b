#!/usr/bin/env bash
# The whole test suite: lint, strict types on the pure core, then pytest on SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

echo "== lint"
make -s lint
echo "== mypy --strict (pure core)"
make -s typecheck

echo "== PostgreSQL"
EDGEROAM_TEST_POSTGRES_URL="$(bash scripts/ensure-postgres.sh)"
export EDGEROAM_TEST_POSTGRES_URL
echo "using $EDGEROAM_TEST_POSTGRES_URL"

echo "== testbed packages (the root-marked tests need them; as root they fail if missing)"
if [ "$(id -u)" -eq 0 ]; then
  bash scripts/ensure-testbed-deps.sh
else
  echo "not root: the testbed tests will be skipped"
fi

echo "== pytest"
set +e
$BIN/pytest -q -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"
