#!/usr/bin/env bash
# Before/after for a change to pcache's cold (first) run: plain vs an old pcache vs this
# one on the fixture pipelines at bench size, interleaved round by round so that a noisy
# machine hurts both alike. Prints one line per run: pipeline, round, which, seconds, and
# the CPU steal during the run (in 1/100 s; high steal means the host took the CPU).
#   OLD_PCACHE=/path/to/old/checkout/bin/pcache bash bench/cold-ab.sh [PIPELINE...]
# An old checkout: git worktree add /work/old REV && cd /work/old &&
#   ln -s "$OLDPWD/node_modules" node_modules && make -s build
# Env: ROUNDS (default 3), AB_WORK (default bench/work/ab), AB_STDIO=file to send every
# run's stdout and stderr to files (as make bench does, and as a batch job's log would)
# instead of /dev/null.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OLD="${OLD_PCACHE:?set OLD_PCACHE to the bin/pcache of the build to compare with}"
NEW="$ROOT/bin/pcache"
ROUNDS="${ROUNDS:-3}"
WORK="${AB_WORK:-$ROOT/bench/work/ab}"
[ $# -gt 0 ] || set -- chunks variant
OUT=/dev/null ERR=/dev/null
if [ "${AB_STDIO:-null}" = file ]; then OUT="$WORK/last.out" ERR="$WORK/last.err"; fi
steal() { awk '/^cpu /{print $9}' /proc/stat; }
for p in "$@"; do
  script="$ROOT/fixtures/pipelines/$p/run.sh"
  [ -f "$script" ] || { echo "cold-ab: no pipeline '$p'" >&2; exit 2; }
  mkdir -p "$WORK/$p"
  cd "$WORK/$p"
  [ -d data ] || sh "$script" bench > /dev/null 2>&1  # generates the data (not timed)
  for r in $(seq "$ROUNDS"); do
    for which in plain old new; do
      rm -rf out cache
      s0=$(steal)
      t0=$(date +%s.%N)
      case $which in
        plain) sh "$script" bench > "$OUT" 2> "$ERR" ;;
        old) "$OLD" --quiet --cache-dir cache --assume-idempotent -- sh "$script" bench > "$OUT" 2> "$ERR" ;;
        new) "$NEW" --quiet --cache-dir cache --assume-idempotent -- sh "$script" bench > "$OUT" 2> "$ERR" ;;
      esac
      t1=$(date +%s.%N)
      echo "$p $r $which $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') steal $(($(steal) - s0))"
    done
  done
  cd "$ROOT"
done
