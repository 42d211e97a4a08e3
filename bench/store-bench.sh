#!/usr/bin/env bash
# Cache-store speed goals (issue 3). Not part of `make test`.
#   bash bench/store-bench.sh            # all: check, insert, store/restore 1 GiB
#   bash bench/store-bench.sh store      # one part: check | insert | store
# Env: RUNS (default 5), STORE_BENCH_BYTES (default 1 GiB), STORE_BENCH_DIR
# (default bench/work/store-bench; must be on the file system you care about).
# On a shared machine, run it as root under `nice -n -15`: the store and restore
# pipelines use both cores, so other load hurts them more than single-threaded cp.
set -euo pipefail
cd "$(dirname "$0")/.."
out=node_modules/.cache/pcache-store-bench
rm -rf "$out"
# Type-checked build of just the store and this bench (independent of the rest of src/).
npx --no-install tsc --outDir "$out" --rootDir . --module commonjs --target es2022 --strict \
  --esModuleInterop --skipLibCheck --types node bench/store-bench.ts
mkdir -p "${STORE_BENCH_DIR:-bench/work/store-bench}"
command -v b3sum >/dev/null || echo "note: b3sum not found (apt-get install b3sum); using sha256sum" >&2
echo "machine: $(nproc) cores, $(uname -r), $(df -T "${STORE_BENCH_DIR:-bench/work/store-bench}" | awk 'NR==2 {print $2}') file system, load average $(cut -d' ' -f1-3 /proc/loadavg)"
node "$out/bench/store-bench.js" "$@"
