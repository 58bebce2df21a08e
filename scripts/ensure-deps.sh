#!/usr/bin/env bash
# Installs what the build and the tests need: npm packages, and the Debian packages for the
# OVS, Mininet and tshark tests. Idempotent, and a no-op taking well under a second when
# everything is present. Installing Debian packages needs root, as in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

# npm writes node_modules/.package-lock.json on every install: older than the lock file
# means the lock file changed since.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-deps: npm ci"
  npm ci --no-audit --no-fund
fi

# ethtool: netns hosts on the userspace datapath need `ethtool -K eth0 tx off` for TCP to work
# python3-yaml: mininet/zonemesh_net.py reads the model files
# isc-dhcp-client, busybox: dhclient and udhcpc, the DHCP clients of test/integration/ovs-dhcp.test.ts
#   and of the Mininet scenario with --addressing dhcp (npm run demo, overlay-scenario)
# etcd-server: /usr/bin/etcd, which test/integration/etcd-store.test.ts and bench/etcd-store.ts start
# nftables: /usr/sbin/nft, the loss test/integration/tunnel-monitor.test.ts injects on an uplink, and
#   the cut of an etcd member in test/integration/etcd-mastership.test.ts
# chromium: /usr/bin/chromium, the browser test/integration/live-page.test.ts drives with puppeteer-core
# frr: bgpd (with zebra and bfdd) on the gateways and the edge router of test/integration/north-south*.test.ts
# curl: the HTTP client of the VIP in test/integration/ovs-groups.test.ts, of north-south.test.ts and of the demo's north-south section
# iperf: iperf 2, the throughput of bench/north-south.ts
apt_packages=(
  openvswitch-switch openvswitch-testcontroller mininet tshark tcpdump
  python3-os-ken netcat-openbsd iproute2 iputils-ping ethtool python3-yaml etcd-server
  isc-dhcp-client busybox nftables chromium frr curl iperf
)
missing=()
for p in "${apt_packages[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark's wireshark-common asks whether non-root users may capture; answer before it asks.
  echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
