#!/usr/bin/env bash
# Sets everything up, then runs the bundled demo pipeline twice under pcache:
# the first run records every step, the second skips them all.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup.sh"
work="$root/demo-work"
cache="$work/.cache"
rm -rf "$work"
mkdir -p "$work"
cp "$root/fixtures/demo/pipeline.sh" "$work/"
cd "$work"
echo "== first run (cold cache: everything runs and is recorded)"
"$root/bin/pcache" --cache-dir "$cache" -- ./pipeline.sh
echo
echo "== second run (nothing changed: everything is skipped and replayed)"
"$root/bin/pcache" --cache-dir "$cache" -- ./pipeline.sh
echo
echo "== what the first run read and wrote: $root/bin/pcache trace -- ./pipeline.sh"
