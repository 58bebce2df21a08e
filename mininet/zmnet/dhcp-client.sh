#!/bin/sh
# The configuration script of the scenario's DHCP clients, for ISC dhclient (-sf: $reason and
# new_*) and busybox udhcpc (-s: $1 and plain names). It configures only the interface (address,
# mask, MTU, routes): nothing of the host, such as resolv.conf. When ZM_DHCP_OUT names a directory
# (dhclient: -e ZM_DHCP_OUT=DIR, which is the only environment it passes), each event's
# environment is kept there as EVENT.env, for the caller to read what the server said.
event="${reason:-$1}"
[ -n "$ZM_DHCP_OUT" ] && env > "$ZM_DHCP_OUT/$event.env"
case "$event" in
  PREINIT|deconfig) ip link set "$interface" up; ip addr flush dev "$interface" ;;
  BOUND|RENEW|REBIND|REBOOT)
    [ -n "$new_interface_mtu" ] && ip link set "$interface" mtu "$new_interface_mtu"
    ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
    for r in $new_routers; do ip route replace default via "$r" dev "$interface"; break; done ;;
  bound|renew)
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    ip addr replace "$ip/$subnet" dev "$interface"
    set -- $staticroutes
    while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done ;;
esac
exit 0
