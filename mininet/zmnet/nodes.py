"""Mininet node classes of the scenario. Every node lives in a *named* network namespace
(`ip netns add`), so the namespaces outlive the Python process that built them, the test
runner's cleanup finds them by name (zm*), and `ip netns exec NAME ...` reaches them.

  UnderlayRouter  one Linux bridge per zone, the zone's first address on it, ip_forward
  Hypervisor      its own ovsdb-server and ovs-vswitchd (userspace datapath, state in its run
                  directory), br-phy (NORMAL, standalone) holding the tunnel IP on the uplink,
                  and the integration bridge (secure, OpenFlow 1.3, pinned datapath id)
  Vm              eth0 into the hypervisor's integration bridge, MTU 1400 (or by DHCP), tx checksum offload off
"""
import os
import shlex
import subprocess

from mininet.node import Node

SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema'
OVS_DAEMONS = ('ovs-vswitchd', 'ovsdb-server')


def _sysctls(node: Node) -> None:
    # No IPv6 (the VMs of dual-stack subnets get it from `slaac`, zmnet/slaac.py): router
    # solicitations, MLD and DAD would only add noise to the overlay and the underlay captures. rp_filter off: the underlay router routes between zone bridges.
    node.cmd('sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 '
             'net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0')


class NetnsNode(Node):
    """A Mininet node whose shell runs in the named namespace `netns` (default: its name).
    attach=True joins an existing namespace instead of creating it."""

    def __init__(self, name, netns=None, attach=False, **params):
        self.netns = netns or name
        if not attach:
            if os.path.exists(f'/run/netns/{self.netns}'):
                raise RuntimeError(f'network namespace {self.netns} exists already (run `down` first)')
            subprocess.run(['ip', 'netns', 'add', self.netns], check=True)
        super().__init__(name, inNamespace=True, **params)
        if not attach:
            self.cmd('ip link set lo up')
            _sysctls(self)

    def _popen(self, cmd, **params):
        # Node.startShell runs `mnexec -cdn bash ...`: -n would unshare a new, anonymous
        # namespace. Run it in our named one instead (ip netns exec execs, so the pid stays
        # the shell's, which Mininet's `ip link ... netns PID` relies on).
        if cmd and cmd[0] == 'mnexec' and len(cmd) > 1 and cmd[1].startswith('-') and 'n' in cmd[1]:
            cmd = ['ip', 'netns', 'exec', self.netns, 'mnexec', cmd[1].replace('n', '')] + list(cmd[2:])
        return super()._popen(cmd, **params)

    def check(self, command: str) -> str:
        """Runs a shell command; raises with its output unless it exits 0."""
        out = self.cmd(f'{command}; echo "__rc=$?"')
        body, _, rc = out.rpartition('__rc=')
        if rc.strip() != '0':
            raise RuntimeError(f'{self.netns}: `{command}` failed (exit {rc.strip()}): {body.strip()}')
        return body

    def detach(self) -> None:
        """Ends the Mininet shell but leaves the namespace and what runs in it."""
        self.terminate()


class UnderlayRouter(NetnsNode):
    def bring_up(self, zones: dict, uplinks: dict, hv_zone: dict) -> None:
        self.check('sysctl -qw net.ipv4.ip_forward=1')
        script = []
        for z in zones.values():
            br = z['bridge']
            plen = z['cidr'].split('/')[1]
            script += [f'ip link add {br} address {z["mac"]} type bridge forward_delay 0 stp_state 0',
                       f'ip addr add {z["gateway"]}/{plen} dev {br}',
                       f'ip link set {br} up']
        for hv, port in uplinks.items():
            script.append(f'ip link set {port} master {zones[hv_zone[hv]]["bridge"]} up')
        self.check(' && '.join(script))


class Hypervisor(NetnsNode):
    """A hypervisor with a private Open vSwitch: no kernel module, no system OVS involved."""

    def __init__(self, name, **params):
        super().__init__(name, **params)
        # The userspace datapath reads eth1 through a raw socket, but the namespace's kernel
        # sees eth1's frames too, and by default answers an ARP request for the tunnel IP
        # (which lives on br-phy) out of eth1, with eth1's MAC. The peers' OVS snoops that reply
        # into its tunnel neighbour cache and then sends Geneve to eth1's MAC, which br-phy does
        # not decapsulate: the path fails until the entry is replaced. arp_ignore=1 answers
        # only on the interface that holds the address.
        self.cmd('sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.default.arp_ignore=1')

    def configure(self, hv: dict) -> None:
        self.hv = hv
        self.rundir = hv['rundir']
        # in this node's shell (Mininet CLI), ovs-vsctl and ovs-ofctl BRIDGE talk to our OVS
        self.cmd(f'export OVS_RUNDIR={self.rundir}')

    def vsctl(self, args: str, wait: bool = True) -> str:
        return self.check(f'ovs-vsctl --timeout=20 {"" if wait else "--no-wait "}--db=unix:{self.rundir}/db.sock {args}')

    def start_ovs_cmd(self) -> str:
        """The shell commands that start this hypervisor's ovsdb-server and ovs-vswitchd."""
        d = self.rundir
        return ' && '.join([
            f'mkdir -p {d}', f'rm -f {d}/conf.db', f'ovsdb-tool create {d}/conf.db {SCHEMA}',
            f'ovsdb-server {d}/conf.db --remote=punix:{d}/db.sock --pidfile={d}/ovsdb-server.pid '
            f'--unixctl={d}/ovsdb-server.ctl --log-file={d}/ovsdb-server.log --detach --no-chdir -vconsole:off',
            f'ovs-vsctl --timeout=20 --no-wait --db=unix:{d}/db.sock init',
            # OVS_RUNDIR: the bridges' BRIDGE.mgmt sockets go to this instance's run directory
            f'OVS_RUNDIR={d} ovs-vswitchd unix:{d}/db.sock --pidfile={d}/ovs-vswitchd.pid '
            f'--unixctl={d}/ovs-vswitchd.ctl --log-file={d}/ovs-vswitchd.log --detach --no-chdir -vconsole:off',
        ])

    def bridges_cmd(self, ports: list) -> str:
        """One ovs-vsctl transaction: br-phy with the uplink, the integration bridge with its
        controller (a bridge's first controller flushes its flows, so it is set here, in the
        add-br transaction) and the VM ports."""
        h = self.hv
        br = h['bridge']
        args = [
            f'-- add-br {h["physBridge"]}',
            f'-- set bridge {h["physBridge"]} datapath_type=netdev fail_mode=standalone other_config:hwaddr={h["physMac"]}',
            f'-- add-port {h["physBridge"]} {h["uplink"]}',
            f'-- add-br {br}',
            f'-- set bridge {br} datapath_type=netdev fail_mode=secure protocols=OpenFlow13 '
            f'other_config:datapath-id={h["datapathId"][2:]} other_config:hwaddr={h["bridgeMac"]} '
            f'other_config:disable-in-band=true',
        ]
        if h['mode'] == 'listen':
            # active unix: target inside the run directory (vswitchd refuses one outside it)
            target = shlex.quote(f'target="unix:{h["socket"]}"')  # ovs-vsctl wants the quotes
            args += [f'-- --id=@zmc create Controller {target} max_backoff=1000',
                     f'-- set bridge {br} controller=@zmc']
        for p in ports:
            args.append(f'-- add-port {br} {p["interface"]}')
            if p.get('ofport'):
                args.append(f'-- set interface {p["interface"]} ofport_request={p["ofport"]}')
        return f'ovs-vsctl --timeout=20 --db=unix:{self.rundir}/db.sock ' + ' '.join(args)

    def underlay_cmd(self) -> str:
        h = self.hv
        return ' && '.join([
            f'ip link set {h["uplink"]} up',
            f'ip addr add {h["tunnelIp"]}/{h["prefixLen"]} dev {h["physBridge"]}',
            f'ip link set {h["physBridge"]} up',
            f'ip route add default via {h["gateway"]} dev {h["physBridge"]}',
        ])


class Vm(NetnsNode):
    def bring_up(self, vm: dict, addressing: str) -> None:
        i = vm['iface']
        # by DHCP, the MTU is the server's to give (option 26): eth0 starts at the veth default
        self.check(f'ip link set {i} mtu 1400 && ip link set {i} up' if addressing == 'static' else f'ip link set {i} up')
        # the userspace datapath does not complete partial checksums: without this TCP fails
        self.cmd(f'ethtool -K {i} tx off >/dev/null 2>&1')

