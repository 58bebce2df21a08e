#!/usr/bin/python3
"""zonemesh's multi-zone Mininet scenario, built from a model file.  Run as root with the
Debian python (/usr/bin/python3: Mininet imports only there).

  up MODEL [--state DIR] [--prefix zm] [--controller-mode dial|listen] [--addressing static|dhcp] [--cli]
        builds the scenario and prints JSON: the state directory, hypervisors.json (what the
        controller reads: per hypervisor `openflow` and `ovsdb` endpoints), timings.
        dial (default): the controller connects to each bridge's passive unix:RUNDIR/br-int.mgmt.
        listen: each br-int connects to unix:RUNDIR/zonemesh.sock, where the controller listens
        (`openflow` is then 'punix:PATH': create that listening socket).
        --addressing dhcp: the VMs' eth0 come up without address, route or MTU; run `dhcp` once
        the controller (with the dhcp-responder app) is in sync.
  plan MODEL                             print the names and paths `up` would use; creates nothing
  down [--state DIR] [--prefix zm]       tear down by pidfiles and names; idempotent
  status                                 namespaces, daemons, bridges, ports (JSON)
  move PORT HV                           move a VM's veth to another hypervisor
  dhcp [VM...] [--client dhclient|udhcpc] [--timeout 10]
                                         run a DHCP client in the VMs (all by default) at once; JSON per VM
  slaac [VM...] [--timeout 15]           enable IPv6 in the VMs of dual-stack subnets (all by default)
                                         and wait for their SLAAC address and default route; JSON per VM
  underlay                               hypervisor-to-hypervisor ping matrix on the underlay
  pingmatrix [--count 2] [--pairs all|vpc] [--family 4|6] [--json]
  ping SRC VM|IP [--count 3]
  capture start NAME [--where uplinks|zones|outside] [--filter BPF]  /  capture stop NAME
  nc listen VM PORT  /  nc check SRC VM|IP PORT [--timeout 2]  /  nc stop [VM [PORT]]
  exec NODE CMD...                       run CMD in a hypervisor's, VM's, the router's (or edge's, internet's) namespace

The state directory (default $ZM_STATE or /tmp/zm/PREFIX) holds state.json, hypervisors.json,
hv/HV/ (each hypervisor's OVS: conf.db, db.sock, br-int.mgmt, pidfiles, logs) and captures/.
No tunnel port and no flow is created: the controller does that.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from zmnet import probe, sysutil  # noqa: E402
from zmnet.layout import default_state_dir  # noqa: E402


def log(msg: str) -> None:
    print(f'zonemesh_net: {msg}', file=sys.stderr, flush=True)


def emit(data, as_json: bool = True) -> None:
    print(json.dumps(data, indent=2) if as_json else data, flush=True)


def state_dir(args) -> str:
    return os.path.abspath(args.state or os.environ.get('ZM_STATE') or default_state_dir(args.prefix))


def cmd_up(args) -> int:
    from mininet.log import setLogLevel
    from zmnet.layout import build_layout, hypervisors_json
    from zmnet.model import load_model
    from zmnet.scenario import ZoneMeshScenario, teardown
    setLogLevel('output' if args.cli else 'warning')  # the CLI prints at 'output' level
    model = load_model(args.model)
    layout = build_layout(model, args.prefix, state_dir(args), args.controller_mode, args.model, args.addressing)
    scenario = ZoneMeshScenario(layout, log=log if args.verbose else (lambda m: None))
    scenario.up(keep_shells=args.cli)
    result = {
        'stateDir': layout['stateDir'],
        'stateFile': os.path.join(layout['stateDir'], 'state.json'),
        'hypervisorsJson': layout['hypervisorsJson'],
        'controllerMode': layout['controllerMode'],
        'hypervisors': hypervisors_json(layout),
        'timings': scenario.timings,
    }
    emit(result)
    if args.cli:
        from mininet.cli import CLI
        CLI(scenario.net)
        scenario.detach()
        if not args.keep:
            teardown(layout['stateDir'], layout)
    return 0


def cmd_plan(args) -> int:
    from zmnet.layout import build_layout
    from zmnet.model import load_model
    emit(build_layout(load_model(args.model), args.prefix, state_dir(args), args.controller_mode, args.model, args.addressing))
    return 0


def cmd_down(args) -> int:
    from zmnet.scenario import teardown
    t0 = time.monotonic()
    report = teardown(state_dir(args), prefix=args.prefix)
    report['elapsedMs'] = round((time.monotonic() - t0) * 1000)
    emit(report)
    return 0


def cmd_status(args) -> int:
    emit(probe.status(probe.need_layout(state_dir(args))))
    return 0


def cmd_move(args) -> int:
    from zmnet.scenario import move_vm
    emit(move_vm(state_dir(args), args.port, args.hypervisor))
    return 0


def cmd_dhcp(args) -> int:
    from zmnet.dhcp import run_clients
    r = run_clients(probe.need_layout(state_dir(args)), args.vms, client=args.client, timeout=args.timeout)
    emit(r)
    return 0 if all(v['ok'] for v in r['vms'].values()) else 1


def cmd_slaac(args) -> int:
    from zmnet.slaac import enable
    r = enable(probe.need_layout(state_dir(args)), args.vms, timeout=args.timeout)
    emit(r)
    return 0 if all(v['ok'] for v in r['vms'].values()) else 1


def cmd_underlay(args) -> int:
    from zmnet.scenario import underlay_ping_matrix
    matrix = underlay_ping_matrix(probe.need_layout(state_dir(args)), count=args.count)
    emit(matrix)
    return 0 if all(all(r.values()) for r in matrix.values()) else 1


def cmd_pingmatrix(args) -> int:
    m = probe.ping_matrix(probe.need_layout(state_dir(args)), count=args.count, wait=args.wait, pairs=args.pairs,
                         family=args.family)
    emit(m if args.json else probe.format_matrix(m), args.json)
    return 0


def cmd_ping(args) -> int:
    r = probe.ping(probe.need_layout(state_dir(args)), args.src, args.target, count=args.count)
    emit(r)
    return 0 if r['ok'] else 1


def cmd_capture(args) -> int:
    layout = probe.need_layout(state_dir(args))
    if args.action == 'start':
        emit(probe.capture_start(layout, args.name, where=args.where, bpf=args.filter))
    else:
        emit(probe.capture_stop(layout, args.name))
    return 0


def cmd_nc(args) -> int:
    layout = probe.need_layout(state_dir(args))
    if args.action == 'listen':
        emit(probe.nc_listen(layout, args.vm, int(args.rest[0])))
    elif args.action == 'check':
        target, port = args.rest
        r = probe.nc_check(layout, args.vm, target, int(port), timeout=args.timeout)
        emit(r)
        return 0 if r['ok'] else 1
    else:
        emit({'stopped': probe.nc_stop(layout, args.vm, int(args.rest[0]) if args.rest else None)})
    return 0


def cmd_exec(args) -> int:
    layout = probe.need_layout(state_dir(args))
    env = []
    if args.node in layout['hypervisors']:
        hv = layout['hypervisors'][args.node]
        ns, env = hv['netns'], ['env', f'OVS_RUNDIR={hv["rundir"]}']  # ovs-vsctl, ovs-ofctl BRIDGE: this HV's OVS
    elif args.node in layout['vms']:
        ns = layout['vms'][args.node]['netns']
    elif args.node == 'router':
        ns = layout['router']['netns']
    elif args.node in ('edge', 'internet') and layout.get('outside'):
        ns = layout['outside'][args.node]['netns']
    else:
        raise RuntimeError(f'unknown node {args.node!r}: a hypervisor, a VM (port), router, or edge and internet (with external networks)')
    os.execvp('ip', sysutil.nsexec(ns, env + args.command))
    return 127


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog='zonemesh_net.py', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--state', help='state directory (default $ZM_STATE or /tmp/zm/PREFIX)')
    p.add_argument('--prefix', default='zm', help='name prefix of namespaces (default zm; must start with zm)')
    p.add_argument('-v', '--verbose', action='store_true')
    sub = p.add_subparsers(dest='cmd', required=True)

    def add(name, fn, **kw):
        sp = sub.add_parser(name, **kw)
        # also accept the global options after the subcommand
        sp.add_argument('--state', default=argparse.SUPPRESS)
        sp.add_argument('--prefix', default=argparse.SUPPRESS)
        sp.add_argument('-v', '--verbose', action='store_true', default=argparse.SUPPRESS)
        sp.set_defaults(fn=fn)
        return sp

    sp = add('up', cmd_up, help='build the scenario from a model file')
    sp.add_argument('model')
    sp.add_argument('--controller-mode', choices=('dial', 'listen'), default='dial')
    sp.add_argument('--addressing', choices=('static', 'dhcp'), default='static',
                    help="VMs' addresses: the model's, set at up (default), or by DHCP later (`dhcp`)")
    sp.add_argument('--cli', action='store_true', help='open the Mininet CLI, tear down when it exits')
    sp.add_argument('--keep', action='store_true', help='with --cli: leave the scenario up')
    sp = add('plan', cmd_plan, help='print the names and paths `up` would use (state.json), create nothing')
    sp.add_argument('model')
    sp.add_argument('--controller-mode', choices=('dial', 'listen'), default='dial')
    sp.add_argument('--addressing', choices=('static', 'dhcp'), default='static')
    add('down', cmd_down, help='tear everything down (idempotent)')
    add('status', cmd_status)
    sp = add('move', cmd_move, help='move a VM to another hypervisor')
    sp.add_argument('port')
    sp.add_argument('hypervisor')
    sp = add('dhcp', cmd_dhcp, help='run a DHCP client in VMs (all by default), at once; exit 1 unless every VM got a lease')
    sp.add_argument('vms', nargs='*')
    sp.add_argument('--client', choices=('dhclient', 'udhcpc'), default='dhclient')
    sp.add_argument('--timeout', type=int, default=10, help='seconds (udhcpc: DISCOVERs 1 s apart) before a client gives up')
    sp = add('slaac', cmd_slaac, help='enable IPv6 in dual-stack VMs; exit 1 unless every one got its SLAAC address')
    sp.add_argument('vms', nargs='*')
    sp.add_argument('--timeout', type=float, default=15.0)
    sp = add('underlay', cmd_underlay)
    sp.add_argument('--count', type=int, default=1)
    sp = add('pingmatrix', cmd_pingmatrix)
    sp.add_argument('--count', type=int, default=2)
    sp.add_argument('--wait', type=float, default=1.0)
    sp.add_argument('--pairs', choices=('all', 'vpc'), default='all')
    sp.add_argument('--family', type=int, choices=(4, 6), default=4, help='6: ping -6 between dual-stack VMs')
    sp.add_argument('--json', action='store_true')
    sp = add('ping', cmd_ping)
    sp.add_argument('src')
    sp.add_argument('target')
    sp.add_argument('--count', type=int, default=3)
    sp = add('capture', cmd_capture)
    sp.add_argument('action', choices=('start', 'stop'))
    sp.add_argument('name')
    sp.add_argument('--where', choices=('uplinks', 'zones', 'outside'), default='uplinks')
    sp.add_argument('--filter', help='BPF filter, e.g. "udp port 6081"')
    sp = add('nc', cmd_nc)
    sp.add_argument('action', choices=('listen', 'check', 'stop'))
    sp.add_argument('vm', nargs='?')
    sp.add_argument('rest', nargs='*')
    sp.add_argument('--timeout', type=float, default=2.0)
    sp = add('exec', cmd_exec)
    sp.add_argument('node')
    sp.add_argument('command', nargs=argparse.REMAINDER)

    args = p.parse_args(argv)
    if os.geteuid() != 0:
        log('must run as root')
        return 2
    try:
        return args.fn(args)
    except Exception as e:  # pylint: disable=broad-except
        if args.verbose:
            raise
        log(f'{args.cmd} failed: {e}')
        return 1


if __name__ == '__main__':
    sys.exit(main())
