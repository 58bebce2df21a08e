#!/usr/bin/env bash
# test-files.sh unit|system: the compiled test files (dist/test/**/*.test.js) of one phase of
# scripts/test.sh, one a line, sorted. System tests are the files under test/integration/ and
# those named ovs-*.test.ts: they share the one system OVS and the zm* names. Unit tests are
# the rest. Only tests whose source still exists: dist/ may hold tests deleted since.
set -euo pipefail
cd "$(dirname "$0")/.."
case ${1:-} in
  unit | system) ;;
  *) echo "usage: $0 unit|system" >&2; exit 2 ;;
esac
find dist/test -name '*.test.js' | sort | while IFS= read -r js; do
  rel=${js#dist/}
  [ -f "${rel%.js}.ts" ] || continue
  case $rel in
    test/integration/* | */ovs-*.test.js) phase=system ;;
    *) phase=unit ;;
  esac
  if [ "$phase" = "$1" ]; then echo "$js"; fi
done
