"""DHCP clients in the VMs: ISC dhclient (Debian's) or busybox udhcpc, run in every VM at once,
each with a bounded number of tries, configuring eth0 through zmnet/dhcp-client.sh. What each VM
got is read back from the interface and from the client's own view of the lease.

dhclient stays running after its lease (a VM keeps its client), with a pidfile in
STATE/dhcp/VM/; udhcpc quits once bound (-q). `down` stops them with the namespaces."""
import os
import shutil
import subprocess
import time
from typing import Dict, List, Optional

from . import sysutil

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'dhcp-client.sh')
CLIENTS = ('dhclient', 'udhcpc')

# A private configuration, so nothing of the host's /etc/dhcp applies. Retransmissions after
# 1 s and at most 2 s apart: the default starts at 10 s, and a lost first DISCOVER would cost that.
DHCLIENT_CONF = """timeout {timeout};
retry 1;
initial-interval 1;
backoff-cutoff 2;
request subnet-mask, routers, domain-name, domain-name-servers, interface-mtu, dhcp-lease-time;
"""


def dhcp_dir(layout: dict, vm: Optional[str] = None) -> str:
    d = os.path.join(layout['stateDir'], 'dhcp')
    return os.path.join(d, vm) if vm else d


def stop_clients(layout: dict, vms: Optional[List[str]] = None) -> List[int]:
    """Stops the dhclients left running in `vms` (all by default), by their pidfiles."""
    root = dhcp_dir(layout)
    names = vms if vms is not None else (os.listdir(root) if os.path.isdir(root) else [])
    return sysutil.stop_pidfiles([os.path.join(root, vm, 'dhclient.pid') for vm in names], expect='dhclient')


def _command(layout: dict, vm: str, client: str, timeout: int) -> List[str]:
    d = dhcp_dir(layout, vm)
    iface = layout['vms'][vm]['iface']
    if client == 'dhclient':
        conf = os.path.join(d, 'dhclient.conf')
        with open(conf, 'w') as f:
            f.write(DHCLIENT_CONF.format(timeout=timeout))
        # -1: one attempt, exit 2 without a lease after `timeout` seconds
        args = ['dhclient', '-1', '-v', '-cf', conf, '-sf', SCRIPT, '-lf', os.path.join(d, 'dhclient.leases'),
                '-pf', os.path.join(d, 'dhclient.pid'), '-e', f'ZM_DHCP_OUT={d}', iface]
    else:
        # -n: exit 1 without a lease after `timeout` DISCOVERs 1 s apart; -q: quit once bound
        args = ['env', f'ZM_DHCP_OUT={d}', 'busybox', 'udhcpc', '-n', '-q', '-f', '-i', iface, '-s', SCRIPT,
                '-t', str(timeout), '-T', '1', '-A', '1', '-O', 'mtu', '-O', 'staticroutes']
    return sysutil.nsexec(layout['vms'][vm]['netns'], args)


def _read_env(path: str) -> Dict[str, str]:
    out = {}
    try:
        with open(path, errors='replace') as f:
            for line in f:
                k, sep, v = line.rstrip('\n').partition('=')
                if sep:
                    out[k] = v.strip("'")
    except FileNotFoundError:
        pass
    return out


def _lease(d: str, client: str) -> Optional[dict]:
    """What the client was told, from the script's environment at BOUND (dhclient) or bound (udhcpc)."""
    if client == 'dhclient':
        e = _read_env(os.path.join(d, 'BOUND.env')) or _read_env(os.path.join(d, 'REBOOT.env'))
        keys = {'ip': 'new_ip_address', 'mask': 'new_subnet_mask', 'router': 'new_routers', 'mtu': 'new_interface_mtu',
                'leaseTime': 'new_dhcp_lease_time', 'server': 'new_dhcp_server_identifier'}
    else:
        e = _read_env(os.path.join(d, 'bound.env'))
        keys = {'ip': 'ip', 'mask': 'subnet', 'router': 'router', 'mtu': 'mtu', 'leaseTime': 'lease', 'server': 'serverid',
                'staticRoutes': 'staticroutes'}
    if not e:
        return None
    lease = {k: e[v] for k, v in keys.items() if v in e}
    for k in ('mtu', 'leaseTime'):
        if k in lease and lease[k].isdigit():
            lease[k] = int(lease[k])
    return lease


def _interface(layout: dict, vm: str) -> dict:
    """eth0 as `ip` sees it: address with prefix, MTU, default route."""
    ns, iface = layout['vms'][vm]['netns'], layout['vms'][vm]['iface']
    ip = lambda *args: sysutil.run(sysutil.nsexec(ns, ['ip', *args]), check=False).stdout
    inet = [f.split()[3] for f in ip('-4', '-o', 'addr', 'show', 'dev', iface).splitlines() if len(f.split()) > 3]
    link = ip('-o', 'link', 'show', 'dev', iface).split()
    mtu = int(link[link.index('mtu') + 1]) if 'mtu' in link else None
    default = ip('-4', 'route', 'show', 'default').split()
    return {'inet': inet[0] if inet else None, 'mtu': mtu, 'mac': link[link.index('link/ether') + 1] if 'link/ether' in link else None,
            'defaultVia': default[2] if len(default) > 2 and default[1] == 'via' else None}


def run_clients(layout: dict, vms: Optional[List[str]] = None, client: str = 'dhclient', timeout: int = 10) -> dict:
    """Runs `client` in each VM (all by default) at once and waits for all; a VM's earlier dhclient
    is stopped first. Per VM: ok (a lease), the time it took, the client's exit code and last
    output lines, the lease as the client saw it, and eth0 afterwards."""
    if client not in CLIENTS:
        raise ValueError(f'client must be one of {", ".join(CLIENTS)}, not {client!r}')
    names = vms or list(layout['vms'])
    unknown = [vm for vm in names if vm not in layout['vms']]
    if unknown:
        raise RuntimeError(f'unknown VM {", ".join(unknown)} (have {", ".join(layout["vms"])})')
    stop_clients(layout, names)
    procs = {}
    t0 = time.monotonic()
    for vm in names:
        d = dhcp_dir(layout, vm)
        shutil.rmtree(d, ignore_errors=True)  # the previous run's leases and events
        os.makedirs(d)
        # to a file, not a pipe: dhclient's daemon, forked after the lease, would hold a pipe open
        with open(os.path.join(d, 'client.log'), 'w') as log:
            procs[vm] = (time.monotonic(), subprocess.Popen(_command(layout, vm, client, timeout), stdin=subprocess.DEVNULL,
                                                           stdout=log, stderr=subprocess.STDOUT))
    done = {}  # vm -> (exit code, or None when killed; seconds)
    deadline = time.monotonic() + timeout + 15
    while len(done) < len(procs):
        for vm, (started, proc) in procs.items():
            if vm not in done and proc.poll() is not None:
                done[vm] = (proc.returncode, time.monotonic() - started)
        if len(done) < len(procs) and time.monotonic() > deadline:
            for vm, (started, proc) in procs.items():
                if vm not in done:
                    proc.kill()
                    proc.wait()
                    done[vm] = (None, time.monotonic() - started)
        time.sleep(0.02)
    results = {}
    for vm, (code, seconds) in done.items():
        d = dhcp_dir(layout, vm)
        with open(os.path.join(d, 'client.log'), errors='replace') as f:
            out = f.read()
        lease = _lease(d, client)
        results[vm] = {'vm': vm, 'client': client, 'ok': code == 0 and lease is not None, 'exitCode': code,
                       'elapsedMs': round(seconds * 1000), 'lease': lease,
                       'interface': _interface(layout, vm), 'output': out.strip().splitlines()[-5:]}
    return {'client': client, 'elapsedMs': round((time.monotonic() - t0) * 1000), 'vms': results}
