#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, builds, runs jest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
exec npx --no-install jest --runInBand "$@"
