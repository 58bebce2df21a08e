#!/usr/bin/env bash
# `npm test`, which CI runs through .ci/run: install what is missing, type-check and build,
# start the system Open vSwitch if it is down, run every test, then clean up whatever the
# tests left on the machine. Needs root for the OVS, netns and Mininet tests.
#
# Tests run in two ava invocations:
#   1. unit tests, files in parallel, in a clone of HEAD alone in an empty folder when the work tree
#      has no uncommitted change (as in CI): that run proves the committed tree builds and passes
#      with nothing beside it (issue 8), with the build made here copied in rather than made twice;
#      with uncommitted changes they run here, and the run says the standalone check was not made;
#   2. system tests (files under test/integration/ and files named ovs-*.test.ts), which share
#      the one system OVS and the zm* names, with --serial: one file, one test at a time.
# scripts/test-files.sh unit|system lists the files of each.
# Processes that tests start must leave a pidfile anywhere under $ZONEMESH_TEST_STATE
# (test/helpers/run.ts spawnTracked does it); they are killed by pid at the end.
set -uo pipefail
cd "$(dirname "$0")/.."

export ZONEMESH_TEST_STATE=${ZONEMESH_TEST_STATE:-/tmp/zonemesh-test}
OVS_CTL=/usr/share/openvswitch/scripts/ovs-ctl
AVA_TIME_LIMIT=40m # per invocation: both together stay inside CI's 90 minutes

ovs_up() { command -v ovs-vsctl >/dev/null && ovs-vsctl --timeout=5 show >/dev/null 2>&1; }

kill_pids() {
  local pids=("$@") alive=() pid
  [ ${#pids[@]} -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    alive=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    [ ${#alive[@]} -eq 0 ] && return 0
    sleep 0.3
  done
  kill -KILL "${alive[@]}" 2>/dev/null
}

# Removes what tests leave behind; at the start too, for a run that was killed before its own cleanup.
clean_machine() {
  local pids=() ns br f pid
  # Processes the tests started, by the pidfiles they left; a process younger than its
  # pidfile is a stranger that reused the pid.
  local now age
  now=$(date +%s)
  while IFS= read -r f; do
    read -r pid <"$f" && [[ $pid =~ ^[0-9]+$ ]] || continue
    age=$(ps -o etimes= -p "$pid" 2>/dev/null) || continue
    [ $((now - age)) -le $(($(stat -c %Y "$f") + 1)) ] && pids+=("$pid")
  done < <(find "$ZONEMESH_TEST_STATE" -name '*.pid' 2>/dev/null)
  kill_pids "${pids[@]}"
  # Network namespaces named zm*, with anything still running inside them.
  for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^zm/ {print $1}'); do
    mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null)
    kill_pids "${pids[@]}"
    ip netns del "$ns" 2>/dev/null
  done
  # mn -c deletes every bridge and kills processes by name (ping, controller, ...): only on
  # a throwaway CI machine, never on a developer's.
  if [ -n "${CI:-}" ] && command -v mn >/dev/null; then
    mn -c >/dev/null 2>&1
  fi
  if ovs_up; then
    for br in $(ovs-vsctl --timeout=5 list-br | grep '^zm'); do
      ovs-vsctl --timeout=10 --if-exists del-br "$br"
    done
    # the SSL configuration test/integration/ovs-tls.test.ts sets (its files are ours), never another
    if ovs-vsctl --timeout=5 get-ssl | grep -qF "$ZONEMESH_TEST_STATE/"; then
      ovs-vsctl --timeout=10 del-ssl
    fi
  fi
}

# Runs on one machine share the system OVS and the zm* names: one run at a time.
exec 9>"$ZONEMESH_TEST_STATE.lock"
if ! flock -n 9; then
  echo "test.sh: waiting for another test run on this machine to finish"
  flock 9
fi
clean_machine
rm -rf "$ZONEMESH_TEST_STATE"
mkdir -p "$ZONEMESH_TEST_STATE"
# what the tests leave in the temporary folder is looked for after the run (test/helpers/run.ts tempDir removes its own)
tmp_before=$(mktemp "$ZONEMESH_TEST_STATE/tmp-before.XXXXXX")
ls -A /tmp >"$tmp_before"

started_ovs=
ovs_was_down=
cleaned=
unit_clone=
cleanup() {
  [ -n "$cleaned" ] && return
  cleaned=1
  [ -n "$unit_clone" ] && rm -rf "$unit_clone"
  clean_machine
  if [ -n "$started_ovs" ]; then
    "$OVS_CTL" stop >"$ZONEMESH_TEST_STATE/ovs-stop.log" 2>&1 || cat "$ZONEMESH_TEST_STATE/ovs-stop.log"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# An OVS that a package install starts is ours to stop too.
ovs_up || ovs_was_down=1
bash scripts/ensure-deps.sh || exit 1

# tsc emits even when it reports type errors: the tests still run on its output, so one run
# shows every problem, but the type errors fail the run.
tsc_failed=
npx tsc -p . || tsc_failed=1

if ovs_up; then
  started_ovs=${ovs_was_down:-}
else
  if ! "$OVS_CTL" start --system-id=random >"$ZONEMESH_TEST_STATE/ovs-start.log" 2>&1; then
    cat "$ZONEMESH_TEST_STATE/ovs-start.log"
    echo "test.sh: could not start Open vSwitch"
    exit 1
  fi
  started_ovs=1
fi

mapfile -t unit < <(bash scripts/test-files.sh unit)
mapfile -t system < <(bash scripts/test-files.sh system)

passed=0 failed=0 skipped=0 known=0 ava_failed=
run_ava() {
  local log=$1 rc fails
  shift
  timeout --kill-after=30s "$AVA_TIME_LIMIT" npx ava "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  # Count the default reporter's per-test lines: its closing summary omits the passed
  # count whenever something failed.
  passed=$((passed + $(grep -c '^  ✔ ' "$log")))
  fails=$(grep -c '^  ✘ \[' "$log")
  if [ "$rc" -ne 0 ]; then
    ava_failed=1
    # a crash or timeout outside any test still counts as a failure
    [ "$fails" -eq 0 ] && { echo "test.sh: ava exited with status $rc outside any test (see above)"; fails=1; }
  fi
  failed=$((failed + fails))
  skipped=$((skipped + $(grep -c '^  - \[skip\]' "$log")))
  known=$((known + $(grep -c '^  ✔ \[expected fail\]' "$log")))
}

# A clone of HEAD with only this checkout's node_modules (linked) and build (copied: the tree is
# HEAD, so it is HEAD's build) beside its committed files.
unit_dir=.
if [ -z "$tsc_failed" ] && head=$(git rev-parse HEAD 2>/dev/null) && [ -z "$(git status --porcelain)" ]; then
  unit_clone=$(mktemp -d /tmp/zonemesh-unit.XXXXXX)
  if git clone --quiet --no-checkout . "$unit_clone/zonemesh" && git -C "$unit_clone/zonemesh" checkout --quiet --detach "$head" &&
    ln -s "$PWD/node_modules" "$unit_clone/zonemesh/node_modules" && cp -a dist "$unit_clone/zonemesh/dist"; then
    unit_dir=$unit_clone/zonemesh
    echo "test.sh: unit tests in a clone of $head alone in $unit_clone (nothing else beside it)"
  else
    echo "test.sh: could not clone HEAD for the unit tests (above)"
    exit 1
  fi
else
  echo "test.sh: uncommitted changes (or no git): unit tests run in this checkout, the standalone check (a clone of HEAD alone) is not made"
fi
if [ ${#unit[@]} -gt 0 ]; then
  # not a subshell: run_ava counts into this shell's totals
  pushd "$unit_dir" >/dev/null || exit 1
  run_ava "$ZONEMESH_TEST_STATE/ava-unit.log" "${unit[@]}"
  popd >/dev/null || exit 1
fi
if [ ${#system[@]} -gt 0 ]; then
  echo "test.sh: system tests, one at a time: ${system[*]#dist/}"
  run_ava "$ZONEMESH_TEST_STATE/ava-system.log" --serial "${system[@]}"
fi

cleanup

# new entries of /tmp named as the tests name theirs, besides the state folder and its lock
left=$(ls -A /tmp | grep -vxFf "$tmp_before" | grep -E '^(zm|zonemesh)' | grep -vxF -e "$(basename "$ZONEMESH_TEST_STATE")" -e "$(basename "$ZONEMESH_TEST_STATE").lock")
status=0
[ -n "$left" ] && { echo "test.sh: the tests left these in /tmp: $(echo "$left" | tr '\n' ' ')"; status=1; }
[ -n "$tsc_failed" ] && { echo "test.sh: tsc reported type errors (see above)"; status=1; }
[ -n "$ava_failed" ] && status=1
[ $((passed + failed)) -eq 0 ] && { echo "test.sh: no test ran"; status=1; }
[ "$known" -gt 0 ] && echo "known failures (test.failing), counted as passed: $known"
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status
