#!/usr/bin/env bash
# `npm run demo`: the multi-zone VPC overlay of a model (default models/two-zones.yaml) on real Open vSwitch.
#
#   npm run demo                      install what is missing, build, bring the scenario up, start the
#                                     controller, wait for sync, print the DHCP leases, the SLAAC
#                                     addresses, the IPv4 and IPv6 ping matrices (expected vs actual
#                                     per pair), the underlay check, north-south (floating IPs from
#                                     the internet, each VM's egress address, locality) and the load
#                                     balancers (split, zone affinity, failover); scenario and
#                                     controller stay up for exploring (the output says how to tear down)
#   npm run demo -- --model FILE      the same on another model
#   npm run demo -- check             SLAAC, the matrices, underlay check, north-south, split and
#                                     zone affinity again, on the running demo
#   npm run demo -- down              stop the controller, tear the scenario down
#
# ZM_PREFIX (default zm) and ZM_STATE (default /tmp/zm/$ZM_PREFIX) name the demo's namespaces and
# state directory; `check` and `down` need the same ones. The demo itself: scripts/overlay-demo.ts.
#
# Exit status: 0 when the leases, SLAAC, both ping matrices and north-south match the model and no
# underlay or load-balancer check fails (a check the model has no pair for is skipped).
# Needs root (network namespaces, tcpdump). The scenario runs one private ovsdb-server and
# ovs-vswitchd (userspace datapath) per hypervisor, so the system Open vSwitch is neither
# needed nor touched; `npm run demo:l2` uses it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (network namespaces, Open vSwitch, tcpdump): sudo npm run demo" >&2
  exit 2
fi

# processes the demo's helpers start for a moment (zonemesh_net.py runs) leave their pidfiles here
export ZONEMESH_TEST_STATE=${ZONEMESH_DEMO_RUN:-/tmp/zm/demo-run}
mkdir -p "$ZONEMESH_TEST_STATE"

case "${1:-}" in
  down | check)
    # nothing to install for these, and the build is there since `npm run demo` ran
    if [ -f dist/scripts/demo.js ]; then exec node dist/scripts/demo.js "$@"; fi
    if [ "$1" = down ]; then exec /usr/bin/python3 mininet/zonemesh_net.py --prefix "${ZM_PREFIX:-zm}" down; fi
    ;;
esac

bash scripts/ensure-deps.sh
echo "demo: building (tsc)"
if ! npm run --silent build >"$ZONEMESH_TEST_STATE/build.log" 2>&1; then
  cat "$ZONEMESH_TEST_STATE/build.log"
  echo "demo: the build failed (above)" >&2
  exit 1
fi
exec node dist/scripts/demo.js "$@"
