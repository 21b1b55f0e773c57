#!/usr/bin/env bash
# Instructions per iteration of each bench scenario, counted by callgrind: stable from run to
# run (unlike criterion's wall-clock times), so usable as a CI regression signal.
#
#   benches/icount.sh                 every scenario
#   benches/icount.sh session_e2e     scenarios whose name contains "session_e2e"
#
# Only the timed loop is counted (`--toggle-collect` on icount's `measure`), not setup.
# Needs valgrind. Counts depend on the build (compiler, profile, CPU features), so compare
# numbers from the same toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
filter="${1:-}"

cargo build --quiet --profile bench -p gatehouse-benches --bin icount
bin=target/release/icount

printf '%-28s %8s %16s\n' scenario iters 'Ir/iter'
"$bin" | while read -r name iters; do
    [[ -z "$filter" || "$name" == *"$filter"* ]] || continue
    ir=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        --toggle-collect='*icount*measure*' "$bin" "$name" "$iters" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
    if [[ -z "$ir" ]]; then
        echo "icount: no count for $name (run valgrind by hand to see why)" >&2
        exit 1
    fi
    printf '%-28s %8d %16d\n' "$name" "$iters" $((ir / iters))
done
