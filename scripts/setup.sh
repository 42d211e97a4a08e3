#!/usr/bin/env bash
# Installs everything pcache needs on a fresh Debian 12 machine with Node 20, then
# builds it. Idempotent and quick when nothing changed.
#   apt packages: build tools and the programs the tests and benchmarks run
#   npm packages: from package-lock.json, falling back to `npm install` when
#                 `npm ci` trips over lock entries for other platforms
#   builds: the native addon, the TypeScript, the C fixtures
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(g++ make python3 strace file chromium)
# the fixture pipelines (test/pipelines, make bench) and their peers in make bench
APT_PACKAGES+=(bwa samtools bcftools fastp clustalo hmmer seqtk snakemake reprozip)
if [ "${PCACHE_SETUP_EXTRA:-}" != "" ]; then
  # shellcheck disable=SC2206
  APT_PACKAGES+=(${PCACHE_SETUP_EXTRA})
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

export npm_config_nodedir="${npm_config_nodedir:-/usr}"
lock_sum="$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -c1-16)"
if [ ! -f node_modules/.pcache-stamp ] || [ "$(cat node_modules/.pcache-stamp)" != "$lock_sum" ]; then
  echo "setup: installing npm packages" >&2
  if ! npm ci --no-audit --no-fund --loglevel=error >/tmp/pcache-npm-ci.log 2>&1; then
    echo "setup: npm ci failed (see /tmp/pcache-npm-ci.log), falling back to npm install" >&2
    npm install --no-audit --no-fund --no-save --loglevel=error
  fi
  # better-sqlite3 must be built from source for this Node; make sure it loads.
  if ! node -e "new (require('better-sqlite3'))(':memory:')" 2>/dev/null; then
    echo "setup: rebuilding better-sqlite3 from source" >&2
    (cd node_modules/better-sqlite3 && npx --no-install node-gyp rebuild --release >/dev/null)
  fi
  echo "$lock_sum" > node_modules/.pcache-stamp
fi

make -s build
