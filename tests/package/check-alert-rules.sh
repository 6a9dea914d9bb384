#!/usr/bin/env bash
# The Prometheus alert rules shipped in dist/prometheus: promtool check rules, then the rules'
# unit tests (tests/package/licentra-alerts.test.yml).
#   tests/package/check-alert-rules.sh SOURCE_DIR
# Under CI=true a missing promtool fails the test; elsewhere the test is skipped (exit 77).
set -euo pipefail

source_dir=$(cd "${1:?usage: check-alert-rules.sh SOURCE_DIR}" && pwd)
if ! command -v promtool >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then
    echo "alert rules check: FAIL: promtool is not installed (run scripts/setup)" >&2
    exit 1
  fi
  echo "alert rules check: SKIP: promtool is not installed (run scripts/setup)"
  exit 77
fi
cd "$source_dir"
promtool check rules dist/prometheus/licentra-alerts.yml
promtool test rules tests/package/licentra-alerts.test.yml
