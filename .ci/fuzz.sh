#!/usr/bin/env bash
# Runs every Fuzz target in the module for a short time each.
# Usage: fuzz.sh [duration]   (default 8s)
#
# A real finding always writes a reproducer ("Failing input written to ...")
# that fails again when replayed, or reports a panic or a test failure; this
# script fails on those. Go's fuzzing engine has two known false alarms on a
# loaded machine: a bare "context deadline exceeded" when a worker misses the
# stop deadline at the -fuzztime boundary (golang/go#51484, #75804), and
# "fuzzing process hung or terminated unexpectedly" when a starved worker
# takes over ten seconds on one input (golang/go#56238), which writes that
# input. Such a run is retried (twice at most), after a deterministic replay of the seed
# corpus and testdata, and, for the second, of the input it wrote (which
# must pass; it is then removed).
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-8s}
total=0
flaked=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# boundary_flake reports whether the log of a failed run shows only the
# deadline race: the deadline message and no finding.
boundary_flake() {
  grep -q 'context deadline exceeded' "$1" &&
    ! grep -qE 'Failing input written to|panic:|fatal error:|DATA RACE|_test\.go:[0-9]+:' "$1"
}

# hung_flake reports whether the log of a failed run shows only a worker
# the engine took for hung, and the input it wrote passes when replayed
# ($2: package, $3: target); the input is then removed.
hung_flake() {
  grep -q 'fuzzing process hung or terminated unexpectedly' "$1" || return 1
  ! grep -qE 'panic:|fatal error:|DATA RACE|_test\.go:[0-9]+:' "$1" || return 1
  local input id dir
  input=$(grep -oE 'Failing input written to [^ ]+' "$1" | head -n 1 | awk '{print $5}')
  [[ -n $input ]] || return 1
  id=$(basename "$input")
  dir=$(go list -f '{{.Dir}}' "$2")
  go test -run "^$3/$id\$" "$2" || return 1
  rm -f "$dir/$input"
}

fuzz_one() { # pkg target
  go test -run '^$' -fuzz "^$2\$" -fuzztime "$dur" -fuzzminimizetime 2s "$1" >"$log" 2>&1
}

while IFS= read -r pkg; do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)\(' "$dir"/*_test.go 2>/dev/null | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/' | sort -u || true)
  for t in $targets; do
    echo "fuzz $pkg $t for $dur"
    total=$((total + 1))
    passed=false
    for attempt in 1 2 3; do
      if fuzz_one "$pkg" "$t"; then
        tail -n 3 "$log"
        passed=true
        break
      fi
      if ((attempt == 3)) || ! { boundary_flake "$log" || hung_flake "$log" "$pkg" "$t"; }; then
        break
      fi
      echo "  the run ended on a fuzzing-engine false alarm with no finding; replaying the corpus and retrying"
      flaked=$((flaked + 1))
      go test -run "^$t\$" "$pkg"
    done
    if ! $passed; then
      cat "$log"
      echo "fuzz target $t in $pkg failed" >&2
      exit 1
    fi
  done
done < <(go list ./...)
echo "fuzzed $total targets ($flaked retried after an engine false alarm)"
