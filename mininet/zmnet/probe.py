"""Probes for the tests: the VM ping matrix, underlay captures (tcpdump in the router namespace,
one pcap per hypervisor uplink) and TCP port checks with nc. They need only state.json."""
import json
import os
import shutil
import struct
import subprocess
import time
from typing import Dict, List, Optional

from . import sysutil
from .layout import load_layout, namespaces


def need_layout(state_dir: str) -> dict:
    layout = load_layout(state_dir)
    if layout is None:
        raise RuntimeError(f'no scenario in {state_dir} (state.json missing): run `up` first')
    return layout


def _ping_args(ip: str, count: int, wait: float, interval: float, family: int = 4) -> List[str]:
    return ['ping', f'-{family}', '-n', '-q', '-c', str(count), '-i', str(interval), '-W', str(wait), ip]


def _parse_ping(out: str) -> Dict[str, int]:
    # "2 packets transmitted, 2 received, 0% packet loss, time 201ms"
    for line in out.splitlines():
        if 'packets transmitted' in line:
            f = line.replace(',', '').split()
            return {'sent': int(f[0]), 'received': int(f[3])}
    return {'sent': 0, 'received': 0}


def _address_key(family: int) -> str:
    if family not in (4, 6):
        raise ValueError(f'family must be 4 or 6, not {family!r}')
    return 'ip' if family == 4 else 'ip6'


def _target(vms: dict, src: str, dst: str, key: str = 'ip') -> str:
    ip = vms[dst][key]
    if vms[src][key] == ip:
        return 'self'
    owner = [n for n, v in vms.items() if v['vpc'] == vms[src]['vpc'] and v[key] == ip]
    return owner[0] if owner else dst


def ping_matrix(layout: dict, count: int = 2, wait: float = 1.0, interval: float = 0.2,
                pairs: str = 'all', concurrency: int = 64, family: int = 4) -> dict:
    """Every VM pings every other VM's IP (from its own namespace), concurrently. A pair is
    reachable when at least one reply came back. family 6: the dual-stack VMs' IPv6 addresses.

    VPCs may reuse addresses, so a ping to dst's IP reaches whoever owns that IP in the source's
    VPC: `target` names that VM ('self' when it is the source's own address), and equals `dst`
    unless the IP is ambiguous."""
    key = _address_key(family)
    vms = {n: v for n, v in layout['vms'].items() if v.get(key)}
    todo = [(s, d) for s in vms for d in vms if s != d and (pairs == 'all' or vms[s]['vpc'] == vms[d]['vpc'])]
    results, running = [], []
    t0 = time.monotonic()

    def reap(entry):
        (s, d), proc = entry
        out, _ = proc.communicate()
        r = _parse_ping(out)
        results.append({'src': s, 'dst': d, 'ip': vms[d][key], 'target': _target(vms, s, d, key), **r, 'ok': r['received'] > 0})

    for pair in todo:
        if len(running) >= concurrency:
            reap(running.pop(0))
        s, d = pair
        proc = subprocess.Popen(sysutil.nsexec(vms[s]['netns'], _ping_args(vms[d][key], count, wait, interval, family)),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        running.append((pair, proc))
    for entry in running:
        reap(entry)
    order = {name: i for i, name in enumerate(vms)}
    results.sort(key=lambda r: (order[r['src']], order[r['dst']]))
    return {'vms': list(vms), 'family': family, 'count': count, 'elapsedMs': round((time.monotonic() - t0) * 1000), 'pairs': results}


def format_matrix(matrix: dict) -> str:
    names = matrix['vms']
    cell = {(r['src'], r['dst']): r for r in matrix['pairs']}
    w = max(len(n) for n in names) + 1
    lines = ['src \\ dst'.ljust(w) + ''.join(n.rjust(w) for n in names)]
    for s in names:
        row = s.ljust(w)
        for d in names:
            r = cell.get((s, d))
            text = '.' if r is None else (f'{r["received"]}/{r["sent"]}' if r['ok'] else 'x')
            if r is not None and r['target'] != d:
                text = '~' + text
            row += text.rjust(w)
        lines.append(row)
    ok = sum(1 for r in matrix['pairs'] if r['ok'])
    lines.append(f'{ok}/{len(matrix["pairs"])} pairs reachable ({matrix["elapsedMs"]} ms); x = no reply, '
                 '~ = the IP belongs to another VM (or the source itself) in the source\'s VPC')
    return '\n'.join(lines)


def ping(layout: dict, src: str, target: str, count: int = 3, wait: float = 1.0, interval: float = 0.2) -> dict:
    vms = layout['vms']
    ip = vms[target]['ip'] if target in vms else target
    r = sysutil.run(sysutil.nsexec(vms[src]['netns'], _ping_args(ip, count, wait, interval)), check=False,
                    timeout=count * (interval + wait) + 10)
    res = _parse_ping(r.stdout)
    return {'src': src, 'ip': ip, **res, 'ok': res['received'] > 0}


# ---- underlay captures ----

def _capture_dir(layout: dict, name: str) -> str:
    if not name or '/' in name or name.startswith('.'):
        raise ValueError(f'bad capture name {name!r}')
    return os.path.join(layout['captureDir'], name)


def capture_start(layout: dict, name: str, where: str = 'uplinks', bpf: Optional[str] = None,
                  ready_timeout: float = 5.0) -> dict:
    """tcpdump in the underlay router namespace: `uplinks` = one pcap per hypervisor (on the
    router's end of its uplink, which sees everything the hypervisor sends or receives);
    `zones` = one pcap per zone bridge (only what the router itself routes between zones);
    `outside` = one pcap per gateway, on the edge router's end of its segment port.
    Returns when every tcpdump is listening."""
    d = _capture_dir(layout, name)
    try:
        with open(os.path.join(d, 'manifest.json')) as f:
            old = json.load(f)
        if any(sysutil.alive(e['pid']) and 'tcpdump' in sysutil.cmdline(e['pid']) for e in old['files'].values()):
            raise RuntimeError(f'capture {name} is running already in {d}')
    except FileNotFoundError:
        pass
    shutil.rmtree(d, ignore_errors=True)  # a finished capture of the same name is replaced
    os.makedirs(d, exist_ok=True)
    router = layout['router']
    netns = router['netns']
    if where == 'uplinks':
        targets = {hv: port for hv, port in router['uplinks'].items()}
    elif where == 'zones':
        targets = {z: zone['bridge'] for z, zone in router['zones'].items()}
    elif where == 'outside' and layout.get('outside'):
        netns = layout['outside']['edge']['netns']
        gateways = layout['outside']['gateways']
        targets = {(g['hypervisor'] if [x['hypervisor'] for x in gateways].count(g['hypervisor']) == 1 else f'{g["hypervisor"]}@{g["network"]}'): g['edgeIface']
                   for g in gateways}
    else:
        raise ValueError(f'where must be uplinks, zones or (with external networks) outside, not {where!r}')
    manifest = {'name': name, 'where': where, 'filter': bpf, 'netns': netns, 'files': {}}
    procs = {}
    for key, iface in targets.items():
        pcap = os.path.join(d, f'{key}.pcap')
        # --immediate-mode: otherwise libpcap hands packets over in blocks (up to 1 s late) and
        # a tcpdump stopped soon after the traffic writes nothing. -Z root: keep the file ours.
        args = ['tcpdump', '-n', '--immediate-mode', '-U', '-Z', 'root', '-s', '0', '-i', iface, '-w', pcap] + ([bpf] if bpf else [])
        pidfile = os.path.join(d, f'{key}.pid')
        log = os.path.join(d, f'{key}.log')
        procs[key] = sysutil.spawn_detached(sysutil.nsexec(netns, args), pidfile, log)
        manifest['files'][key] = {'iface': iface, 'pcap': pcap, 'pidfile': pidfile, 'log': log, 'pid': procs[key].pid}
    with open(os.path.join(d, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
    deadline = time.monotonic() + ready_timeout
    pending = set(targets)
    while pending and time.monotonic() < deadline:
        for key in list(pending):
            with open(manifest['files'][key]['log'], errors='replace') as f:
                text = f.read()
            if 'listening on' in text:
                pending.discard(key)
            elif procs[key].poll() is not None:
                capture_stop(layout, name)
                raise RuntimeError(f'tcpdump on {targets[key]} exited: {text.strip()}')
        time.sleep(0.02)
    if pending:
        capture_stop(layout, name)
        raise RuntimeError(f'tcpdump not listening within {ready_timeout}s on {", ".join(sorted(pending))}')
    return manifest


def pcap_frame_count(path: str) -> int:
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        return 0
    if len(data) < 24:
        return 0
    endian = '<' if data[:4] in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1') else '>'
    n, at = 0, 24
    while at + 16 <= len(data):
        incl = struct.unpack_from(endian + 'I', data, at + 8)[0]
        at += 16 + incl
        n += 1
    return n


def capture_stop(layout: dict, name: str, settle: float = 0.2) -> dict:
    """Stops the capture's tcpdumps (SIGINT, by pidfile) after `settle` seconds for packets
    still in flight, and waits until the pcaps are complete."""
    d = _capture_dir(layout, name)
    try:
        with open(os.path.join(d, 'manifest.json')) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise RuntimeError(f'no capture {name} in {d}') from None
    time.sleep(settle)
    sysutil.stop_pidfiles([e['pidfile'] for e in manifest['files'].values()], expect='tcpdump', sig=2)
    for e in manifest['files'].values():
        e['frames'] = pcap_frame_count(e['pcap'])
    return manifest


# ---- TCP checks ----

def _probe_dir(layout: dict) -> str:
    d = os.path.join(layout['stateDir'], 'probes')
    os.makedirs(d, exist_ok=True)
    return d


def _listening(netns: str, port: int) -> bool:
    r = sysutil.run(sysutil.nsexec(netns, ['ss', '-Hltn', f'sport = :{port}']), check=False)
    return bool(r.stdout.strip())


def nc_listen(layout: dict, vm: str, port: int, timeout: float = 3.0) -> dict:
    """A TCP listener (nc -lk) in the VM, accepting any number of connections."""
    netns = layout['vms'][vm]['netns']
    pidfile = os.path.join(_probe_dir(layout), f'nc-{vm}-{port}.pid')
    if _listening(netns, port):
        raise RuntimeError(f'something listens on tcp/{port} in {vm} already')
    proc = sysutil.spawn_detached(sysutil.nsexec(netns, ['nc', '-lk', str(port)]), pidfile, f'{pidfile[:-4]}.log')
    deadline = time.monotonic() + timeout
    while not _listening(netns, port):
        if proc.poll() is not None or time.monotonic() > deadline:
            sysutil.stop_pidfiles([pidfile], expect='nc')
            raise RuntimeError(f'nc did not listen on tcp/{port} in {vm}')
        time.sleep(0.02)
    return {'vm': vm, 'port': port, 'pid': proc.pid, 'pidfile': pidfile}


def nc_stop(layout: dict, vm: Optional[str] = None, port: Optional[int] = None) -> List[int]:
    d = _probe_dir(layout)
    files = [os.path.join(d, f) for f in os.listdir(d) if f.startswith('nc-') and f.endswith('.pid')]
    if vm is not None:
        files = [f for f in files if os.path.basename(f).startswith(f'nc-{vm}-')
                 and (port is None or os.path.basename(f) == f'nc-{vm}-{port}.pid')]
    return sysutil.stop_pidfiles(files, expect='nc')


def nc_check(layout: dict, src: str, target: str, port: int, timeout: float = 2.0) -> dict:
    """Whether a TCP connection from `src` to target:port completes (nc -z)."""
    vms = layout['vms']
    ip = vms[target]['ip'] if target in vms else target
    t0 = time.monotonic()
    r = sysutil.run(sysutil.nsexec(vms[src]['netns'], ['nc', '-z', '-n', '-w', str(int(max(1, timeout))), ip, str(port)]),
                    check=False, timeout=timeout + 10)
    return {'src': src, 'ip': ip, 'port': port, 'ok': r.returncode == 0,
            'elapsedMs': round((time.monotonic() - t0) * 1000), 'detail': (r.stderr or r.stdout).strip()}


# ---- status ----

def status(layout: dict) -> dict:
    out = {'namespaces': {}, 'hypervisors': {}}
    for ns in namespaces(layout):
        out['namespaces'][ns] = sysutil.netns_exists(ns)
    for name, hv in layout['hypervisors'].items():
        daemons = {}
        for daemon in ('ovsdb-server', 'ovs-vswitchd'):
            pid = sysutil.read_pidfile(os.path.join(hv['rundir'], f'{daemon}.pid'))
            daemons[daemon] = bool(pid and sysutil.alive(pid) and daemon in sysutil.cmdline(pid))
        bridges = []
        if daemons['ovsdb-server']:
            r = sysutil.run(['ovs-vsctl', '--timeout=5', f'--db={hv["ovsdb"]}', 'list-br'], check=False)
            bridges = r.stdout.split()
        ports = []
        if hv['bridge'] in bridges:
            r = sysutil.run(['ovs-vsctl', '--timeout=5', f'--db={hv["ovsdb"]}', 'list-ports', hv['bridge']], check=False)
            ports = r.stdout.split()
        out['hypervisors'][name] = {'daemons': daemons, 'bridges': bridges, 'ports': ports,
                                    'socket': os.path.exists(hv['socket']) if hv['mode'] == 'dial' else None}
    return out
