#!/usr/bin/env bash
# `npm run bench`: every benchmark, one after the other, then their result tables again as a summary.
#   1. codec          npm run bench:codec            (bench/codec.ts, zonemesh vs os-ken codec)
#   2. controller     node dist/bench/loadgen/driver.js   (cbench-style: zonemesh, os-ken, ceiling)
#   3. install rate   node dist/bench/install-rate.js     (100k flows into OVS: zonemesh vs ovs-ofctl vs raw)
#   4. hostile        node dist/bench/hostile.js          (multipart bombs, PACKET_IN floods: RSS, canary echo RTT)
# Options are passed through environment variables:
#   BENCH_ONLY="codec controller install hostile"   subset to run
#   BENCH_CONTROLLER_ARGS="--seconds 10 --warmup 3"   BENCH_INSTALL_ARGS="--runs 3"   BENCH_CODEC_ARGS=""   BENCH_HOSTILE_ARGS="--seconds 20"
# Needs root (OVS bridge zm-bench, taskset). Starts the system OVS if it is down, and stops it again.
# Tables and raw JSON go to $ZONEMESH_BENCH_STATE (default /tmp/zonemesh-bench).
set -uo pipefail
cd "$(dirname "$0")/.."

export ZONEMESH_BENCH_STATE=${ZONEMESH_BENCH_STATE:-/tmp/zonemesh-bench}
OUT=$ZONEMESH_BENCH_STATE
ONLY=${BENCH_ONLY:-codec controller install hostile}
OVS_CTL=/usr/share/openvswitch/scripts/ovs-ctl
mkdir -p "$OUT"
rm -f "$OUT"/summary-*.md

# tsc emits even with type errors elsewhere in the tree; the benchmarks run on its output.
npx tsc -p . >"$OUT/tsc.log" 2>&1 || { echo "bench: tsc reported errors (see $OUT/tsc.log); running on what it emitted"; }
# The benchmarks run from a snapshot of dist/, so a rebuild during the run (another shell,
# a watcher) cannot swap modules under a running controller. It sits inside the repository
# (.zonemesh/ is git-ignored) so that node_modules and the repository root are still found.
BD=.zonemesh/bench-dist
rm -rf "$BD" && mkdir -p .zonemesh && cp -r dist "$BD"
chmod +x "$BD/src/cli/main.js" 2>/dev/null

started_ovs=
ovs_up() { ovs-vsctl --timeout=5 show >/dev/null 2>&1; }
cleanup() {
  ovs_up && ovs-vsctl --timeout=10 --if-exists del-br zm-bench
  [ -n "$started_ovs" ] && "$OVS_CTL" stop >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

status=0
echo "bench: $(nproc) CPUs, node $(node --version), load average $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ " $ONLY " == *" codec "* ]]; then
  echo; echo "== codec =="
  # shellcheck disable=SC2086
  node "$BD/bench/codec.js" ${BENCH_CODEC_ARGS:-} | tee "$OUT/codec.txt" || status=1
  sed -n '/^| message/,/^$/p' "$OUT/codec.txt" >"$OUT/summary-1-codec.md"
fi

if [[ " $ONLY " == *" controller "* ]]; then
  echo; echo "== controller throughput =="
  # shellcheck disable=SC2086
  node "$BD/bench/loadgen/driver.js" --summary "$OUT/summary-2-controller.md" --json "$OUT/controller.json" ${BENCH_CONTROLLER_ARGS:-} || status=1
fi

if [[ " $ONLY " == *" install "* ]]; then
  echo; echo "== proactive install rate =="
  if ! ovs_up; then
    "$OVS_CTL" start --system-id=random >"$OUT/ovs-start.log" 2>&1 && started_ovs=1 || { cat "$OUT/ovs-start.log"; status=1; }
  fi
  # shellcheck disable=SC2086
  ovs_up && { node "$BD/bench/install-rate.js" --summary "$OUT/summary-3-install.md" --json "$OUT/install.json" ${BENCH_INSTALL_ARGS:-} || status=1; }
fi

if [[ " $ONLY " == *" hostile "* ]]; then
  echo; echo "== hostile peers =="
  # shellcheck disable=SC2086
  node "$BD/bench/hostile.js" --cli "$BD/src/cli/main.js" --summary "$OUT/summary-4-hostile.md" ${BENCH_HOSTILE_ARGS:-} || status=1
fi

echo; echo "==================== summary ===================="
for f in "$OUT"/summary-*.md; do
  [ -f "$f" ] || continue
  echo; cat "$f"
done
echo; echo "raw results: $OUT"
exit $status
