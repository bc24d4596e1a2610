#!/usr/bin/env bash
# Runs every Fuzz target in the module for a short time each.
# Usage: fuzz.sh [duration]   (default 8s)
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-8s}
total=0
while IFS= read -r pkg; do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)\(' "$dir"/*_test.go 2>/dev/null | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/' | sort -u || true)
  for t in $targets; do
    echo "fuzz $pkg $t for $dur"
    go test -run '^$' -fuzz "^${t}\$" -fuzztime "$dur" -fuzzminimizetime 2s "$pkg" 2>&1 | tail -n 3
    total=$((total + 1))
  done
done < <(go list ./...)
echo "fuzzed $total targets"
