"""The multi-zone scenario, built from a model file with Mininet, and its tear-down.

    layout = build_layout(load_model(path), 'zm', '/tmp/zm/zm', 'dial', path)
    ZoneMeshScenario(layout).up()      # returns with everything running; the Python may exit
    teardown(layout['stateDir'])       # by pidfiles and names, also after a crash

No tunnel port and no flow is created here: the controller's apps create the Geneve port
through each hypervisor's OVSDB socket and install every flow.
"""
import os
import shutil
import subprocess
import time
from typing import Dict, List, Optional

from mininet.net import Mininet
from mininet.topo import Topo

from . import sysutil
from .layout import HYPERVISORS_FILE, STATE_FILE, hypervisors_json, load_layout, namespaces, save_layout, write_json
from .nodes import OVS_DAEMONS, Hypervisor, UnderlayRouter, Vm


class ZoneMeshTopo(Topo):
    """Faucet-style: the scenario is a class. Hosts are the router, the hypervisors and the VMs;
    links are the hypervisor uplinks (to the router) and the VM ports (to their hypervisor).
    Mininet names are the model's names ('router', hv1, web1: usable in the Mininet CLI);
    each node's namespace is the prefixed name from the layout."""

    def build(self, layout: dict):  # pylint: disable=arguments-differ
        router = layout['router']
        self.addHost(mn_name(layout, 'router'), cls=UnderlayRouter, netns=router['netns'], ip=None)
        for name, hv in layout['hypervisors'].items():
            self.addHost(mn_name(layout, name), cls=Hypervisor, netns=hv['netns'], ip=None)
            self.addLink(mn_name(layout, name), mn_name(layout, 'router'),
                         intfName1=hv['uplink'], intfName2=router['uplinks'][name])
        static = layout['addressing'] == 'static'
        for name, vm in layout['vms'].items():
            addressing = {'ip': f'{vm["ip"]}/{vm["prefixLen"]}', 'defaultRoute': f'via {vm["gateway"]}'} if static else {'ip': None}
            self.addHost(mn_name(layout, name), cls=Vm, netns=vm['netns'], mac=vm['mac'], **addressing)
            self.addLink(mn_name(layout, name), mn_name(layout, vm['hypervisor']),
                         intfName1=vm['iface'], intfName2=vm['interface'])


def mn_name(layout: dict, name: str) -> str:
    """The Mininet node name: the model's name, or the namespace name if names clash."""
    names = ['router', *layout['hypervisors'], *layout['vms']]
    if names.count(name) == 1:
        return name
    if name == 'router':
        return layout['router']['netns']
    return (layout['hypervisors'].get(name) or layout['vms'][name])['netns']


def _parallel(jobs) -> None:
    """Runs (node, shell command) pairs concurrently, one per node; raises on the first failure."""
    for node, command in jobs:
        node.sendCmd(f'{command}; echo "__rc=$?"')
    errors = []
    for node, command in jobs:
        out = node.waitOutput()
        body, _, rc = out.rpartition('__rc=')
        if rc.strip() != '0':
            errors.append(f'{node.netns}: `{command}` failed (exit {rc.strip()}): {body.strip()[-1500:]}')
    if errors:
        raise RuntimeError('\n'.join(errors))


class ZoneMeshScenario:
    def __init__(self, layout: dict, log=lambda msg: None):
        self.layout = layout
        self.log = log
        self.timings: Dict[str, float] = {}
        self.net: Optional[Mininet] = None

    def _mark(self, what: str, since: float) -> float:
        now = time.monotonic()
        self.timings[what] = round(now - since, 3)
        self.log(f'{what}: {now - since:.2f}s')
        return now

    def up(self, keep_shells: bool = False) -> dict:
        """Builds everything; on failure tears down what was built and re-raises."""
        layout = self.layout
        for ns in namespaces(layout):
            if sysutil.netns_exists(ns):
                raise RuntimeError(f'network namespace {ns} exists already: run `down` first (state {layout["stateDir"]})')
        os.makedirs(layout['stateDir'], exist_ok=True)
        shutil.rmtree(layout['captureDir'], ignore_errors=True)  # results of an earlier scenario
        save_layout(layout)  # first, so that `down` can clean up whatever happens next
        t0 = t = time.monotonic()
        try:
            # Mininet.init() would raise system-wide sysctls (fixLimits): not on a shared machine
            Mininet.inited = True
            self.net = Mininet(topo=ZoneMeshTopo(layout), controller=None, build=True, autoSetMacs=False,
                               inNamespace=False, waitConnected=False)
            t = self._mark('namespaces and links', t)
            net = self.net
            router = net.get(mn_name(layout, 'router'))
            hvs = {name: net.get(mn_name(layout, name)) for name in layout['hypervisors']}
            router.bring_up(layout['router']['zones'], layout['router']['uplinks'],
                         {name: hv['zone'] for name, hv in layout['hypervisors'].items()})
            for name, node in hvs.items():
                node.configure(layout['hypervisors'][name])
            for name, vm in layout['vms'].items():
                net.get(mn_name(layout, name)).bring_up(vm, layout['addressing'])
            t = self._mark('router and VMs', t)
            _parallel([(node, node.start_ovs_cmd()) for node in hvs.values()])
            t = self._mark('ovsdb-server and ovs-vswitchd', t)
            ports = {name: [] for name in hvs}
            for vm in layout['vms'].values():
                ports[vm['hypervisor']].append(vm)
            # The VM ports' hypervisor ends: up, MTU as the VM's (the datapath does not fragment)
            _parallel([(node, ' && '.join(['true'] + [f'ip link set {p["interface"]} mtu 1400 up' for p in ports[name]]))
                       for name, node in hvs.items()])
            _parallel([(node, node.bridges_cmd(ports[name])) for name, node in hvs.items()])
            _parallel([(node, node.underlay_cmd()) for node in hvs.values()])
            t = self._mark('bridges', t)
            if layout.get('outside'):
                bring_up_outside(layout)
                t = self._mark('edge router, segments and internet', t)
            write_json(layout['hypervisorsJson'], hypervisors_json(layout))
            self.warm_underlay()
            t = self._mark('underlay warm-up', t)
            self.timings['total'] = round(time.monotonic() - t0, 3)
        except BaseException:
            self.detach()
            teardown(layout['stateDir'], layout)
            raise
        if not keep_shells:
            self.detach()
        return layout

    def detach(self) -> None:
        """Ends the Mininet shells; namespaces, links and daemons stay."""
        if self.net is None:
            return
        for node in self.net.hosts:
            try:
                node.detach()
            except Exception:  # pylint: disable=broad-except
                pass
        self.net = None

    def warm_underlay(self) -> None:
        """Pings between all hypervisors' tunnel IPs (which also checks the underlay), then
        seeds each OVS's tunnel neighbour cache from the kernel's: the first packet on a new
        tunnel path is otherwise lost while OVS resolves the next hop."""
        warm_underlay(self.layout)


def underlay_ping_matrix(layout: dict, count: int = 1, wait: float = 1.0) -> Dict[str, Dict[str, bool]]:
    """Every hypervisor pings every other hypervisor's tunnel IP (concurrently)."""
    hvs = layout['hypervisors']
    procs = {}
    for a, ha in hvs.items():
        for b, hb in hvs.items():
            if a != b:
                procs[(a, b)] = subprocess.Popen(
                    sysutil.nsexec(ha['netns'], ['ping', '-n', '-q', '-c', str(count), '-i', '0.2', '-W', str(wait), hb['tunnelIp']]),
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result: Dict[str, Dict[str, bool]] = {a: {} for a in hvs}
    for (a, b), p in procs.items():
        result[a][b] = p.wait() == 0
    return result


def warm_underlay(layout: dict, attempts: int = 5) -> Dict[str, Dict[str, bool]]:
    matrix = {}
    for _ in range(attempts):
        matrix = underlay_ping_matrix(layout)
        if all(all(row.values()) for row in matrix.values()):
            break
    bad = [f'{a}->{b}' for a, row in matrix.items() for b, ok in row.items() if not ok]
    if bad:
        raise RuntimeError(f'underlay not reachable: {", ".join(bad)}')
    for hv in layout['hypervisors'].values():
        seed_tunnel_neighbours(hv)
    return matrix


def seed_tunnel_neighbours(hv: dict) -> None:
    r = sysutil.run(sysutil.nsexec(hv['netns'], ['ip', '-4', 'neigh', 'show', 'dev', hv['physBridge']]), check=False)
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 3 and f[1] == 'lladdr' and 'FAILED' not in f and 'INCOMPLETE' not in f:
            sysutil.run(['ovs-appctl', '-t', hv['unixctl'], 'tnl/neigh/set', hv['physBridge'], f[0], f[2]], check=False)


def bring_up_outside(layout: dict) -> None:
    """The outside of docs/north-south.md: the edge router namespace with one Linux bridge per
    external network (the segment; the bridge holds the next hop's address and MAC), each
    gateway's segment port a veth from that bridge into the gateway's bridge, the gateway's own
    address on its bridge's LOCAL port, and an internet namespace with a web server behind the
    edge router. Routes to floating IPs and SNAT addresses are not set here: the segment is
    on-link (the gateways answer ARP for them) and BGP adds /32s when it runs."""
    out = layout['outside']
    edge, inet = out['edge'], out['internet']
    run = lambda ns, *args: sysutil.run(sysutil.nsexec(ns, list(args)))
    for ns in (edge['netns'], inet['netns']):
        sysutil.run(['ip', 'netns', 'add', ns])
        run(ns, 'ip', 'link', 'set', 'lo', 'up')
    run(edge['netns'], 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1')
    for seg in edge['segments'].values():
        br = seg['bridge']
        run(edge['netns'], 'ip', 'link', 'add', br, 'type', 'bridge')
        run(edge['netns'], 'ip', 'link', 'set', br, 'address', seg['mac'])
        run(edge['netns'], 'ip', 'addr', 'add', f'{seg["ip"]}/{seg["prefixLen"]}', 'dev', br)
        run(edge['netns'], 'ip', 'link', 'set', br, 'up')
    for g in out['gateways']:
        hv = layout['hypervisors'][g['hypervisor']]
        run(edge['netns'], 'ip', 'link', 'add', g['edgeIface'], 'type', 'veth', 'peer', 'name', g['interface'], 'netns', hv['netns'])
        run(edge['netns'], 'ip', 'link', 'set', g['edgeIface'], 'master', edge['segments'][g['network']]['bridge'], 'up')
        # the userspace datapath does not complete partial checksums (as for the VMs)
        for ns, dev in ((edge['netns'], g['edgeIface']), (hv['netns'], g['interface'])):
            sysutil.run(sysutil.nsexec(ns, ['ethtool', '-K', dev, 'tx', 'off']), check=False)
        run(hv['netns'], 'ip', 'link', 'set', g['interface'], 'up')
        sysutil.run(['ovs-vsctl', '--timeout=20', f'--db={hv["ovsdb"]}', 'add-port', hv['bridge'], g['interface']])
        run(hv['netns'], 'ip', 'addr', 'add', f'{g["ip"]}/{g["prefixLen"]}', 'dev', hv['bridge'])
        run(hv['netns'], 'ip', 'link', 'set', hv['bridge'], 'up')
    run(edge['netns'], 'ip', 'link', 'add', edge['internetIface'], 'type', 'veth', 'peer', 'name', inet['iface'], 'netns', inet['netns'])
    run(edge['netns'], 'ip', 'addr', 'add', f'{edge["internetIp"]}/{inet["prefixLen"]}', 'dev', edge['internetIface'])
    run(edge['netns'], 'ip', 'link', 'set', edge['internetIface'], 'up')
    run(inet['netns'], 'ip', 'addr', 'add', f'{inet["ip"]}/{inet["prefixLen"]}', 'dev', inet['iface'])
    run(inet['netns'], 'ip', 'link', 'set', inet['iface'], 'up')
    run(inet['netns'], 'ip', 'route', 'add', 'default', 'via', inet['gateway'])
    for ns, dev in ((edge['netns'], edge['internetIface']), (inet['netns'], inet['iface'])):
        sysutil.run(sysutil.nsexec(ns, ['ethtool', '-K', dev, 'tx', 'off']), check=False)
    os.makedirs(os.path.dirname(inet['webLog']), exist_ok=True)
    # its access log names each client's address: the SNAT checks read it
    sysutil.spawn_detached(sysutil.nsexec(inet['netns'], ['python3', '-u', '-m', 'http.server', str(inet['webPort']), '--bind', inet['ip'],
                                                          '--directory', os.path.dirname(inet['webLog'])]),
                           inet['webPid'], inet['webLog'])


def _pidfiles_under(directory: str) -> List[str]:
    found = []
    for root, _dirs, files in os.walk(directory):
        found += [os.path.join(root, f) for f in files if f.endswith('.pid')]
    return found


def teardown(state_dir: str, layout: Optional[dict] = None, prefix: Optional[str] = None) -> dict:
    """Stops the daemons by their pidfiles, kills what still runs inside our namespaces, deletes
    the namespaces (with them every veth, Linux bridge and tap) and the run directories.
    Idempotent. Without state.json, namespaces are found by the prefix's name patterns."""
    layout = layout or load_layout(state_dir)
    report = {'stopped': [], 'namespaces': []}
    # 1. captures and listeners the probes started
    report['stopped'] += sysutil.stop_pidfiles(_pidfiles_under(os.path.join(state_dir, 'captures')), expect='tcpdump', sig=2)
    report['stopped'] += sysutil.stop_pidfiles(_pidfiles_under(os.path.join(state_dir, 'probes')), expect='nc', sig=2)
    report['stopped'] += sysutil.stop_pidfiles(_pidfiles_under(os.path.join(state_dir, 'dhcp')), expect='dhclient')
    # 2. each hypervisor's ovs-vswitchd, then its ovsdb-server
    hv_root = os.path.join(state_dir, 'hv')
    rundirs = [os.path.join(hv_root, d) for d in (os.listdir(hv_root) if os.path.isdir(hv_root) else [])]
    if layout:
        rundirs = sorted(set(rundirs) | {h['rundir'] for h in layout['hypervisors'].values()})
    for daemon in OVS_DAEMONS:
        report['stopped'] += sysutil.stop_pidfiles([os.path.join(d, f'{daemon}.pid') for d in rundirs], expect=daemon)
    # 3. the namespaces, and anything still inside them (all of it started by this scenario)
    if layout:
        ours = [ns for ns in namespaces(layout) if sysutil.netns_exists(ns)]
    else:
        p = prefix or 'zm'
        ours = [ns for ns in sysutil.netns_list() if ns in (f'{p}ul', f'{p}edge', f'{p}inet') or ns.startswith((f'{p}h-', f'{p}v-'))]
    for ns in ours:
        sysutil.stop_pids(sysutil.netns_pids(ns), grace=2)
    for ns in ours:
        sysutil.run(['ip', 'netns', 'del', ns], check=False)
        report['namespaces'].append(ns)
    # 4. run directories and state files (captures stay: they are results)
    shutil.rmtree(hv_root, ignore_errors=True)
    shutil.rmtree(os.path.join(state_dir, 'probes'), ignore_errors=True)
    shutil.rmtree(os.path.join(state_dir, 'dhcp'), ignore_errors=True)
    for f in (STATE_FILE, HYPERVISORS_FILE):
        try:
            os.unlink(os.path.join(state_dir, f))
        except FileNotFoundError:
            pass
    return report


def move_vm(state_dir: str, port: str, new_hv: str) -> dict:
    """Physically moves a VM to another hypervisor, as a live migration would: its port leaves
    the old integration bridge (the veth pair is deleted) and a new veth pair joins the VM's
    namespace to the new hypervisor's bridge, with the same interface name, MAC and IP.
    The model file is not touched: the test edits it, and the controller follows."""
    layout = load_layout(state_dir)
    if layout is None:
        raise RuntimeError(f'no scenario in {state_dir}')
    vm = layout['vms'].get(port)
    if vm is None:
        raise RuntimeError(f'unknown port {port!r} (have {", ".join(layout["vms"])})')
    new = layout['hypervisors'].get(new_hv)
    if new is None:
        raise RuntimeError(f'unknown hypervisor {new_hv!r} (have {", ".join(layout["hypervisors"])})')
    old = layout['hypervisors'][vm['hypervisor']]
    if old is new:
        return {'port': port, 'from': vm['hypervisor'], 'to': new_hv, 'moved': False}
    iface = vm['interface']
    taken = [p for p, v in layout['vms'].items() if v['hypervisor'] == new_hv and v['interface'] == iface]
    if taken:
        raise RuntimeError(f'interface {iface} is already used on {new_hv} by {taken[0]}')
    run = sysutil.run
    vsctl = lambda hv, *args: run(['ovs-vsctl', '--timeout=20', f'--db={hv["ovsdb"]}', *args])
    # leave the old hypervisor: port out of OVS, then the veth pair (the VM's eth0 goes with it)
    vsctl(old, '--if-exists', 'del-port', old['bridge'], iface)
    run(sysutil.nsexec(old['netns'], ['ip', 'link', 'del', iface]), check=False)
    run(sysutil.nsexec(vm['netns'], ['ip', 'link', 'del', vm['iface']]), check=False)
    # join the new one
    run(sysutil.nsexec(vm['netns'], ['ip', 'link', 'add', vm['iface'], 'address', vm['mac'], 'mtu', '1400',
                                     'type', 'veth', 'peer', 'name', iface, 'mtu', '1400', 'netns', new['netns']]))
    ns = lambda *args: run(sysutil.nsexec(vm['netns'], list(args)))
    ns('ethtool', '-K', vm['iface'], 'tx', 'off')
    ns('ip', 'addr', 'add', f'{vm["ip"]}/{vm["prefixLen"]}', 'dev', vm['iface'])
    ns('ip', 'link', 'set', vm['iface'], 'up')
    ns('ip', 'route', 'replace', 'default', 'via', vm['gateway'])
    run(sysutil.nsexec(new['netns'], ['ip', 'link', 'set', iface, 'up']))
    extra = ['--', 'set', 'interface', iface, f'ofport_request={vm["ofport"]}'] if vm.get('ofport') else []
    vsctl(new, 'add-port', new['bridge'], iface, *extra)
    previous = vm['hypervisor']
    vm['hypervisor'] = new_hv
    save_layout(layout)
    return {'port': port, 'from': previous, 'to': new_hv, 'moved': True}
