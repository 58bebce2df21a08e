#!/usr/bin/python3
"""Mininet tree topology on the system Open vSwitch (userspace datapath, OpenFlow 1.3) against a
remote controller, with a pingall whose result is printed as one parseable line.

    /usr/bin/python3 mininet/tree.py --controller 127.0.0.1:6653 [--depth 2 --fanout 3]

Defaults build Mininet's `tree,depth=2,fanout=3`: 4 switches, 9 hosts. Mininet imports only
under /usr/bin/python3 (not under another python3 on PATH). Needs root.

Names never collide with other users of the system OVS: switches are PREFIX1..PREFIXn
(default zms1..zms4, dpid = n), hosts HOSTPREFIX1.. (default zmh1..), and every
interface in the root namespace is PREFIXn-ethK. Mininet sets the controller in the same
ovs-vsctl transaction as add-br, so the bridge never gets a first controller later (which
would flush its flows); this script checks that too (see ZM_FLOWS below).

Output (stdout), one `ZM_*` line per fact, the last one being JSON:
    ZM_TOPO depth=2 fanout=3 switches=4 hosts=9
    ZM_CONNECTED 4/4 seconds=0.41
    ZM_PINGALL round=1 sent=72 received=72 loss=0.00%
    ZM_FLOWS round=1 zms1=9 zms2=7 ...          (flows per switch after each round)
    (ZM_RESULT also carries every switch's dump-flows lines after the last round: flow_dumps)
    ZM_RESULT {"loss_pct": 0.0, "sent": 72, "received": 72, "connected": true, ...}
Exit status: 0 when the (last) pingall lost nothing and every switch connected, 1 on loss,
2 on bad usage, 3 when the network could not be built.

`--cleanup` removes what a killed run of this script may have left: the bridges named
PREFIX<digits> and the root-namespace links PREFIX<digits>-eth<digits>. Nothing else (never
`mn -c`, which deletes every bridge on the machine).
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from functools import partial


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--controller', default='127.0.0.1:6653',
                   help='remote controller IP:PORT (default 127.0.0.1:6653)')
    p.add_argument('--depth', type=int, default=2)
    p.add_argument('--fanout', type=int, default=3)
    p.add_argument('--prefix', default='zms', help='switch name prefix (default zms: zms1, zms2, ...)')
    p.add_argument('--host-prefix', default='zmh', help='host name prefix (default zmh)')
    p.add_argument('--rounds', type=int, default=1,
                   help='pingall rounds; the exit status follows the last (default 1)')
    p.add_argument('--count', type=int, default=1, help='pings per host pair per round (default 1)')
    p.add_argument('--ping-timeout', type=int, default=2, help='seconds per ping reply (default 2)')
    p.add_argument('--connect-timeout', type=float, default=20.0,
                   help='seconds to wait for every switch to connect to the controller (default 20)')
    p.add_argument('--datapath', default='user', choices=['user', 'kernel'],
                   help='OVS datapath (default user: no kernel module needed)')
    p.add_argument('--verbosity', default='warning', help="Mininet log level (default warning)")
    p.add_argument('--cleanup', action='store_true',
                   help='only delete the PREFIX<n> bridges and PREFIX<n>-eth<k> links, then exit')
    a = p.parse_args(argv)
    if not re.fullmatch(r'zm[a-z]{1,6}', a.prefix) or not re.fullmatch(r'zm[a-z]{1,6}', a.host_prefix):
        p.error('--prefix and --host-prefix must be zm plus 1-6 lower-case letters (names must fit 15 characters)')
    if a.prefix == a.host_prefix:
        p.error('--prefix and --host-prefix must differ')
    m = re.fullmatch(r'([0-9.]+|localhost):(\d+)', a.controller)
    if not m:
        p.error('--controller must be IP:PORT')
    a.ctl_ip, a.ctl_port = m.group(1), int(m.group(2))
    if a.depth < 1 or a.fanout < 1:
        p.error('--depth and --fanout must be >= 1')
    return a


def emit(line):
    print(line, flush=True)


def sh(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def cleanup(prefix):
    """Deletes only this script's leftovers: bridges PREFIX<n> and root-ns links PREFIX<n>-eth<k>."""
    name_re = re.compile(r'%s\d+$' % re.escape(prefix))
    link_re = re.compile(r'%s\d+-eth\d+$' % re.escape(prefix))
    bridges = [b for b in sh('ovs-vsctl', '--timeout=10', 'list-br').stdout.split() if name_re.match(b)]
    if bridges:
        args = ['ovs-vsctl', '--timeout=20']
        for b in bridges:
            args += ['--', '--if-exists', 'del-br', b]
        sh(*args)
    links = []
    for line in sh('ip', '-o', 'link', 'show').stdout.splitlines():
        f = line.split(':')
        if len(f) > 1:
            name = f[1].strip().split('@')[0]
            if link_re.match(name) or name_re.match(name):
                links.append(name)
    for name in links:
        sh('ip', 'link', 'del', name)
    return bridges, links


def build_topo(Topo, depth, fanout, sp, hp):
    """Mininet's TreeTopo with prefixed names; switch dpid = its number (zms3 -> 3)."""
    class ZmTreeTopo(Topo):
        def build(self):
            self.hostNum = 1
            self.switchNum = 1
            self.add_tree(depth, fanout)

        def add_tree(self, d, f):
            if d > 0:
                node = self.addSwitch('%s%d' % (sp, self.switchNum), dpid='%016x' % self.switchNum)
                self.switchNum += 1
                for _ in range(f):
                    child = self.add_tree(d - 1, f)
                    self.addLink(node, child)
            else:
                node = self.addHost('%s%d' % (hp, self.hostNum))
                self.hostNum += 1
            return node
    return ZmTreeTopo()


def flow_counts(switches):
    out = {}
    for s in switches:
        r = sh('ovs-ofctl', '-O', 'OpenFlow13', 'dump-aggregate', s.name)
        m = re.search(r'flow_count=(\d+)', r.stdout)
        out[s.name] = int(m.group(1)) if m else -1
    return out


def flow_dumps(switches):
    """Each switch's flows as dump-flows prints them (stats fields and all), one string a flow."""
    out = {}
    for s in switches:
        r = sh('ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows', s.name)
        out[s.name] = [l.strip() for l in r.stdout.splitlines() if 'cookie=' in l]
    return out


def controller_targets(switches):
    return {s.name: sh('ovs-vsctl', '--timeout=10', 'get-controller', s.name).stdout.strip() for s in switches}


def ping_pair(src, dst, count, timeout):
    """(sent, received) for `count` pings from src to dst."""
    out = src.cmd('ping -c%d -W%d %s' % (count, timeout, dst.IP()))
    m = re.search(r'(\d+) packets transmitted, (\d+) (?:packets )?received', out)
    if not m:
        return count, 0
    return int(m.group(1)), int(m.group(2))


def pingall(hosts, count, timeout):
    sent = received = 0
    lost_pairs = []
    for src in hosts:
        for dst in hosts:
            if src is dst:
                continue
            s, r = ping_pair(src, dst, count, timeout)
            sent += s
            received += r
            if r < s:
                lost_pairs.append('%s->%s' % (src.name, dst.name))
    return sent, received, lost_pairs


def main(argv):
    a = parse_args(argv)
    if os.geteuid() != 0:
        print('tree.py: must run as root', file=sys.stderr)
        return 2
    if a.cleanup:
        bridges, links = cleanup(a.prefix)
        emit('ZM_CLEANUP bridges=%s links=%s' % (','.join(bridges) or '-', ','.join(links) or '-'))
        return 0

    try:
        from mininet.net import Mininet
        from mininet.node import OVSSwitch, RemoteController
        from mininet.topo import Topo
        from mininet.log import setLogLevel
    except ImportError as e:
        print('tree.py: cannot import mininet (%s); run it with /usr/bin/python3' % e, file=sys.stderr)
        return 3
    setLogLevel(a.verbosity)

    # A SIGTERM (from a test's timeout) must still run net.stop(), which deletes our bridges.
    def on_term(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    # Leftovers of an earlier, killed run with the same prefix would make add-port fail.
    cleanup(a.prefix)

    topo = build_topo(Topo, a.depth, a.fanout, a.prefix, a.host_prefix)
    switch = partial(OVSSwitch, datapath=a.datapath, protocols='OpenFlow13', failMode='secure')
    controller = partial(RemoteController, ip=a.ctl_ip, port=a.ctl_port)
    result = {'depth': a.depth, 'fanout': a.fanout, 'controller': a.controller,
              'connected': False, 'loss_pct': 100.0, 'sent': 0, 'received': 0, 'rounds': []}
    net = None
    status = 3
    try:
        net = Mininet(topo=topo, switch=switch, controller=controller, autoSetMacs=True,
                      waitConnected=False, build=False, cleanup=False)
        net.build()
        emit('ZM_TOPO depth=%d fanout=%d switches=%d hosts=%d' % (a.depth, a.fanout, len(net.switches), len(net.hosts)))
        t0 = time.time()
        net.start()
        connected = net.waitConnected(timeout=a.connect_timeout)
        n_conn = sum(1 for s in net.switches if s.connected())
        emit('ZM_CONNECTED %d/%d seconds=%.2f' % (n_conn, len(net.switches), time.time() - t0))
        result['connected'] = bool(connected)
        result['controller_targets'] = controller_targets(net.switches)
        # Flows the controller installed on connect (table-miss and the like). A later first
        # set-controller would flush them; the per-round counts below show they stay.
        before = flow_counts(net.switches)
        result['flows_after_connect'] = before
        emit('ZM_FLOWS round=0 ' + ' '.join('%s=%d' % kv for kv in sorted(before.items())))
        if not connected:
            # in fail_mode=secure nothing forwards without the controller: 72 pings would only time out
            emit('ZM_PINGALL skipped: not every switch connected to %s' % a.controller)
            result['error'] = 'switches not connected'
        for rnd in range(1, a.rounds + 1 if connected else 1):
            t1 = time.time()
            sent, received, lost = pingall(net.hosts, a.count, a.ping_timeout)
            loss = 100.0 * (sent - received) / sent if sent else 100.0
            flows = flow_counts(net.switches)
            emit('ZM_PINGALL round=%d sent=%d received=%d loss=%.2f%% seconds=%.2f' % (rnd, sent, received, loss, time.time() - t1))
            if lost:
                emit('ZM_LOST round=%d %s' % (rnd, ' '.join(lost[:50])))
            emit('ZM_FLOWS round=%d ' % rnd + ' '.join('%s=%d' % kv for kv in sorted(flows.items())))
            result['rounds'].append({'sent': sent, 'received': received, 'loss_pct': loss, 'flows': flows, 'lost': lost[:50]})
            result.update(sent=sent, received=received, loss_pct=loss)
        # what the last round left installed: tests check whose cookies the flows carry
        result['flow_dumps'] = flow_dumps(net.switches)
        # the bridges must still be the ones Mininet created, with their controller
        result['controller_targets_end'] = controller_targets(net.switches)
        status = 0 if result['connected'] and result['loss_pct'] == 0.0 else 1
    except SystemExit as e:
        result['error'] = 'terminated (%s)' % e.code
        status = 3
    except Exception as e:  # report, then clean up
        result['error'] = '%s: %s' % (type(e).__name__, e)
        status = 3
    finally:
        if net is not None:
            try:
                net.stop()
            except Exception as e:
                result['stop_error'] = str(e)
        cleanup(a.prefix)
        emit('ZM_RESULT ' + json.dumps(result, sort_keys=True))
    return status


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
