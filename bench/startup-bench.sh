#!/usr/bin/env bash
# What one pcache start costs: `--version`, `trace -- /bin/true` and a cached
# `--cache-dir D -- /bin/true` (D filled by a first run), for each pcache given,
# interleaved, wall time in ms: median and min-max of RUNS (default 11) runs each.
#   bash bench/startup-bench.sh [PCACHE ...]      default: this tree's bin/pcache
# e.g. against another checkout: bash bench/startup-bench.sh /path/to/old/bin/pcache bin/pcache
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-11}"
[ $# -gt 0 ] || set -- bin/pcache
# a certificate bundle parsed at each start would be measured too (bin/pcache sets it
# aside for its own Node; `node -e 0` here would not)
unset NODE_EXTRA_CA_CERTS
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cases=()
for i in $(seq $#); do
  p="$(realpath "${!i}")"
  "$p" --quiet --cache-dir "$work/cache$i" -- /bin/true
  cases+=("$p --version" "$p trace -- /bin/true" "$p --cache-dir $work/cache$i -- /bin/true")
done
cases+=("node -e 0")

declare -A times
for _ in $(seq "$RUNS"); do
  for c in "${cases[@]}"; do
    s=$EPOCHREALTIME
    $c >/dev/null 2>&1
    e=$EPOCHREALTIME
    times[$c]+=" $(( (${e/./} - ${s/./}) / 100 ))" # tenths of a ms
  done
done
for c in "${cases[@]}"; do
  printf '%s\n' ${times[$c]} | sort -n | awk -v c="${c/$work/D}" '{ a[NR] = $1 / 10 }
    END { printf "%7.1f ms  (%.1f-%.1f)  %s\n", a[int((NR + 1) / 2)], a[1], a[NR], c }'
done
