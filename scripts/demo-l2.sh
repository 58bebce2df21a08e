#!/usr/bin/env bash
# `npm run demo:l2`: the l2-learning app on Mininet's tree,depth=2,fanout=3 (4 switches, 9 hosts)
# on the system Open vSwitch (userspace datapath), with a pingall. Installs what is missing,
# builds, starts the system OVS if it is down (and stops it again at the end), runs the
# controller on a free local port, runs mininet/tree.py, and cleans everything up: the controller,
# the zms* bridges, and nothing else on the machine. Needs root.
# Exit status: tree.py's (0 = every switch connected and the pingall lost nothing).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo:l2: run as root (Mininet, Open vSwitch): sudo npm run demo:l2" >&2
  exit 2
fi

RUN=${ZONEMESH_DEMO_RUN:-/tmp/zm/demo-l2}
OVS_CTL=/usr/share/openvswitch/scripts/ovs-ctl
mkdir -p "$RUN"
ovs_up() { ovs-vsctl --timeout=5 show >/dev/null 2>&1; }

bash scripts/ensure-deps.sh
echo "demo:l2: building (tsc)"
if ! npm run --silent build >"$RUN/build.log" 2>&1; then
  cat "$RUN/build.log"
  echo "demo:l2: the build failed (above)" >&2
  exit 1
fi

started_ovs=
ctl_pid=
cleanup() {
  if [ -n "$ctl_pid" ] && kill -0 "$ctl_pid" 2>/dev/null; then
    kill -TERM "$ctl_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$ctl_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$ctl_pid" 2>/dev/null || true
  fi
  rm -f "$RUN/zonemesh.pid"
  /usr/bin/python3 mininet/tree.py --cleanup >/dev/null 2>&1 || true
  if [ -n "$started_ovs" ]; then "$OVS_CTL" stop >"$RUN/ovs-stop.log" 2>&1 || cat "$RUN/ovs-stop.log"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! ovs_up; then
  echo "demo:l2: starting Open vSwitch (stopped again at the end)"
  "$OVS_CTL" start --system-id=random >"$RUN/ovs-start.log" 2>&1 || { cat "$RUN/ovs-start.log"; exit 1; }
  started_ovs=1
fi

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
node dist/src/cli/main.js run --apps l2-learning --listen "127.0.0.1:$port" --control "unix:$RUN/control.sock" >"$RUN/zonemesh.log" 2>&1 &
ctl_pid=$!
echo "$ctl_pid" >"$RUN/zonemesh.pid"
for _ in $(seq 100); do
  node -e 'require("net").connect(+process.argv[1],"127.0.0.1").on("connect",()=>process.exit(0)).on("error",()=>process.exit(1))' "$port" && break
  kill -0 "$ctl_pid" 2>/dev/null || { cat "$RUN/zonemesh.log"; echo "demo:l2: the controller exited" >&2; exit 1; }
  sleep 0.1
done
echo "demo:l2: zonemesh run --apps l2-learning --listen 127.0.0.1:$port (pid $ctl_pid, log $RUN/zonemesh.log)"
echo "demo:l2: mininet/tree.py: tree,depth=2,fanout=3 on the system OVS, pingall"
status=0
/usr/bin/python3 mininet/tree.py --controller "127.0.0.1:$port" "$@" | grep '^ZM_' | grep -v '^ZM_RESULT' || status=${PIPESTATUS[0]}
if [ "$status" -eq 0 ]; then
  echo "demo:l2: PASS: every switch connected, the pingall lost nothing"
else
  echo "demo:l2: FAIL (tree.py exit $status); controller log: $RUN/zonemesh.log"
fi
echo "demo:l2: cleaning up: controller stopped, zms* bridges deleted${started_ovs:+, Open vSwitch stopped}"
exit "$status"
