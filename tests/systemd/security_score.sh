#!/usr/bin/env bash
# systemd-analyze security --offline=true on praefect's service units: the
# "Overall exposure level" must be at most the limit (default 2.0).
#
#   security_score.sh SOURCE_DIR [LIMIT]
set -euo pipefail
src=$1 limit=${2:-2.0}
fail=0
for unit in praefect.service praefect-maintenance.service; do
  out=$(systemd-analyze security --offline=true --no-pager "$src/systemd/$unit" 2>&1) || {
    echo "$out" >&2
    echo "FAIL: systemd-analyze security could not analyse $unit" >&2
    exit 1
  }
  score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  if [ -z "$score" ]; then
    printf '%s\n' "$out" >&2
    echo "FAIL: no \"Overall exposure level\" line for $unit" >&2
    exit 1
  fi
  echo "$unit: overall exposure level $score (limit $limit)"
  if awk -v s="$score" -v l="$limit" 'BEGIN { exit !(s > l) }'; then
    printf '%s\n' "$out" | grep '✗' >&2 || true
    echo "FAIL: $unit is exposed at $score, above $limit; harden it in $src/systemd/$unit" >&2
    fail=1
  fi
done
exit "$fail"
