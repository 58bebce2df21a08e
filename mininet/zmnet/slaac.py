"""IPv6 by SLAAC in the VMs of dual-stack subnets, from the controller's router advertisements.

The VMs come up with IPv6 disabled (nodes.py): a router solicitation sent before the controller
is in sync would go unanswered, and the next unsolicited RA is minutes away. `enable` turns IPv6
on once the controller runs, so the VM's solicitation gets the RA at once, then waits until
every VM has its global address and default route.
"""
import re
import time
from typing import List, Optional

from . import sysutil

# The IPv6 minimum: set before IPv6 comes up, so the MTU a VM ends with is the RA's, not its link's.
IPV6_MIN_MTU = 1280


def _state(vm: dict) -> dict:
    ns, i = vm['netns'], vm['iface']
    run = lambda *args: sysutil.run(sysutil.nsexec(ns, list(args)), check=False).stdout
    addrs = run('ip', '-6', '-o', 'addr', 'show', 'dev', i, 'scope', 'global')
    route = run('ip', '-6', 'route', 'show', 'default').strip()
    via = re.search(r'via (\S+)', route)
    mtu = run('cat', f'/proc/sys/net/ipv6/conf/{i}/mtu').strip()
    return {
        # tentative: DAD still running, the address cannot be used yet
        'inet6': [m.group(1) for m in re.finditer(r'inet6 (\S+)', addrs)],
        'tentative': 'tentative' in addrs,
        'defaultVia': via.group(1) if via else None,
        'mtu': int(mtu) if mtu.isdigit() else None,
    }


def _ipv6_enabled(vm: dict) -> bool:
    flag = sysutil.run(sysutil.nsexec(vm['netns'], ['cat', f'/proc/sys/net/ipv6/conf/{vm["iface"]}/disable_ipv6']), check=False).stdout
    return flag.strip() == '0'


def enable(layout: dict, names: Optional[List[str]] = None, timeout: float = 15.0) -> dict:
    """Enables IPv6 (accept_ra, autoconf, EUI-64 addresses) in the VMs of dual-stack subnets (all by
    default) and waits up to `timeout` s until each has the model's address and a default route.
    A VM whose IPv6 is on already is only checked: setting the MTU again would undo the RA's."""
    vms = layout['vms']
    unknown = [n for n in names or [] if n not in vms]
    if unknown:
        raise RuntimeError(f'unknown VM {", ".join(unknown)} (have {", ".join(vms)})')
    chosen = {n: vms[n] for n in (names or vms) if vms[n].get('ip6')}
    t0 = time.monotonic()
    for vm in chosen.values():
        if _ipv6_enabled(vm):
            continue
        i = vm['iface']
        sysutil.run(sysutil.nsexec(vm['netns'], [
            'sysctl', '-qw', f'net.ipv6.conf.{i}.accept_ra=1', f'net.ipv6.conf.{i}.autoconf=1',
            f'net.ipv6.conf.{i}.addr_gen_mode=0', f'net.ipv6.conf.{i}.use_tempaddr=0',
            f'net.ipv6.conf.{i}.mtu={IPV6_MIN_MTU}', f'net.ipv6.conf.{i}.disable_ipv6=0']))
    results = {}
    pending = dict(chosen)
    deadline = t0 + timeout
    while True:
        for name, vm in list(pending.items()):
            s = _state(vm)
            s['ok'] = s['inet6'] == [f'{vm["ip6"]}/64'] and not s['tentative'] and s['defaultVia'] is not None
            results[name] = {'vm': name, 'expected': vm['ip6'], **s, 'elapsedMs': round((time.monotonic() - t0) * 1000)}
            if s['ok']:
                del pending[name]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return {'vms': results, 'elapsedMs': round((time.monotonic() - t0) * 1000)}
