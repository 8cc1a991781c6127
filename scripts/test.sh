#!/usr/bin/env bash
# The test command: bash scripts/test.sh [pytest arguments]
# Installs what is missing (scripts/ensure-test-deps.sh), then lint, type check and pytest.
# Exit status: 0 only when every step passed and pytest ran at least one test.
set -euo pipefail

cd "$(dirname "$0")/.."

bash scripts/ensure-test-deps.sh

export LABSPACE_TEST_POSTGRES_URL=${LABSPACE_TEST_POSTGRES_URL:-postgresql+asyncpg://labspace_test:labspace_test@127.0.0.1/labspace_test}

echo "== ruff" >&2
.venv/bin/ruff check src tests bench
echo "== mypy" >&2
.venv/bin/mypy
echo "== pytest" >&2
status=0
.venv/bin/pytest -q "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; that is a failure" >&2
    exit 1
fi
exit "$status"
