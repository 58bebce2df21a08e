"""Names and paths of everything one scenario creates, derived from the model, a name prefix
and a state directory. It is written to STATE/state.json before anything is created, so that
`down`, `move` and the probes work from that file alone, also after a crash.

Names (prefix P, default 'zm'; everything starts with 'zm' so the test runner's cleanup finds it):
  netns  P + 'ul'            the underlay router
  netns  P + 'h-' + HV       a hypervisor: its own ovsdb-server and ovs-vswitchd
  netns  P + 'v-' + PORT     a VM
  in the router: Linux bridge 'zmz-' + ZONE per zone, port 'u-' + HV per hypervisor uplink
  in a hypervisor: 'eth1' (uplink), OVS bridges 'br-phy' and the model's bridge (br-int)
  in a VM: 'eth0'; its peer on the hypervisor is the model's `interface`
With external networks (docs/north-south.md):
  netns  P + 'edge'          the edge router: a Linux bridge per external network (the segment,
                             with the next hop's address and MAC), port 'g-' + HV per gateway,
                             and 'inet' to the internet
  netns  P + 'inet'          the internet: 'eth0' with INTERNET's address, a web server
  in a gateway: the segment port (the gateway's `interface`) on its bridge, its address on the
  bridge's LOCAL port
"""
import json
import os
import re
from typing import Optional

from .model import IFNAMSIZ, Model

STATE_FILE = 'state.json'
HYPERVISORS_FILE = 'hypervisors.json'
LISTEN_SOCKET = 'zonemesh.sock'
PHYS_BRIDGE = 'br-phy'
UPLINK = 'eth1'
VM_IFACE = 'eth0'
VM_MTU = 1400
# static: each VM's eth0 gets the model's address, route and MTU at `up`; dhcp: eth0 is up with
# nothing, and `dhcp` runs a client in every VM once the controller answers (dhcp-responder)
ADDRESSING = ('static', 'dhcp')
PREFIX_RE = re.compile(r'^zm[a-z0-9]{0,6}$')
SUN_PATH_MAX = 107  # sockaddr_un.sun_path holds 108 bytes with the terminating NUL
# the internet behind the edge router (TEST-NET-1): the router's side and one host with a web server
INTERNET = {'cidr': '192.0.2.0/24', 'router': '192.0.2.1', 'host': '192.0.2.80', 'webPort': 80}


def _ifname(preferred: str, fallback: str) -> str:
    return preferred if len(preferred) <= IFNAMSIZ else fallback


def default_state_dir(prefix: str) -> str:
    return os.path.join('/tmp/zm', prefix)


def build_layout(model: Model, prefix: str, state_dir: str, mode: str, model_path: Optional[str],
                 addressing: str = 'static') -> dict:
    if not PREFIX_RE.match(prefix):
        raise ValueError(f'prefix {prefix!r} must match {PREFIX_RE.pattern}')
    if mode not in ('dial', 'listen'):
        raise ValueError(f'controller mode {mode!r} must be dial or listen')
    if addressing not in ADDRESSING:
        raise ValueError(f'addressing {addressing!r} must be one of {", ".join(ADDRESSING)}')
    state_dir = os.path.abspath(state_dir)
    router = {'netns': f'{prefix}ul', 'zones': {}, 'uplinks': {}}
    for i, z in enumerate(model.zones):
        router['zones'][z.name] = {
            'bridge': _ifname(f'zmz-{z.name}', f'zmz{i}'),
            'cidr': str(z.underlay),
            'gateway': str(z.gateway),
            # a fixed MAC, so the hypervisors' tunnel neighbour entries survive a rebuild
            'mac': '02:fe:%02x:%02x:%02x:%02x' % tuple(z.gateway.packed),
        }
    hvs = {}
    for i, h in enumerate(model.hypervisors):
        zone = model.zone(h.zone)
        rundir = os.path.join(state_dir, 'hv', h.name)
        router['uplinks'][h.name] = _ifname(f'u-{h.name}', f'u{i}')
        mgmt = os.path.join(rundir, f'{h.bridge}.mgmt')
        listen = os.path.join(rundir, LISTEN_SOCKET)
        for sock in (mgmt, listen, os.path.join(rundir, 'db.sock')):
            if len(sock) > SUN_PATH_MAX:
                raise ValueError(f'socket path {sock} is longer than {SUN_PATH_MAX} bytes: use a shorter --state')
        hvs[h.name] = {
            'netns': f'{prefix}h-{h.name}',
            'zone': h.zone,
            'tunnelIp': str(h.tunnel_ip),
            'prefixLen': zone.underlay.prefixlen,
            'gateway': str(zone.gateway),
            'datapathId': f'0x{h.dpid_hex}',
            'bridge': h.bridge,
            'physBridge': PHYS_BRIDGE,
            'uplink': UPLINK,
            'physMac': '02:00:%02x:%02x:%02x:%02x' % tuple(h.tunnel_ip.packed),
            'bridgeMac': '02:01:%02x:%02x:%02x:%02x' % tuple(h.tunnel_ip.packed),
            'rundir': rundir,
            'ovsdb': f'unix:{rundir}/db.sock',
            'mode': mode,
            # From the controller's side: 'unix:' = dial it, 'punix:' = listen there.
            'openflow': f'unix:{mgmt}' if mode == 'dial' else f'punix:{listen}',
            'socket': mgmt if mode == 'dial' else listen,
            'mgmt': mgmt,
            'unixctl': os.path.join(rundir, 'ovs-vswitchd.ctl'),
        }
    vms = {}
    for p in model.ports:
        vms[p.name] = {
            'netns': f'{prefix}v-{p.name}',
            'vpc': p.vpc,
            'subnet': p.subnet,
            'mac': p.mac,
            'ip': str(p.ip),
            'prefixLen': p.cidr.prefixlen,
            'gateway': str(p.gateway),
            'hypervisor': p.hypervisor,
            'interface': p.interface,
            'ofport': p.ofport,
            'iface': VM_IFACE,
            # dual-stack ports: the address SLAAC must give eth0 (`slaac` enables IPv6), else None
            'ip6': str(p.ip6) if p.ip6 else None,
        }
    return {
        'outside': _outside(model, prefix, state_dir) if model.external_networks else None,
        'version': 1,
        'prefix': prefix,
        'stateDir': state_dir,
        'model': os.path.abspath(model_path) if model_path else None,
        'controllerMode': mode,
        'addressing': addressing,
        'hypervisorsJson': os.path.join(state_dir, HYPERVISORS_FILE),
        'captureDir': os.path.join(state_dir, 'captures'),
        'router': router,
        'hypervisors': hvs,
        'vms': vms,
    }


def _outside(model: Model, prefix: str, state_dir: str) -> dict:
    segments, gateways = {}, []
    for i, e in enumerate(model.external_networks):
        segments[e.name] = {
            'bridge': _ifname(f'x-{e.name}', f'x{i}'),
            'ip': str(e.next_hop),
            'prefixLen': e.cidr.prefixlen,
            # the model's next-hop MAC: the gateways send there (docs/north-south.md)
            'mac': e.next_hop_mac or '02:ed:%02x:%02x:%02x:%02x' % tuple(e.next_hop.packed),
        }
        for g in e.gateways:
            gateways.append({'network': e.name, 'hypervisor': g.hypervisor, 'ip': str(g.ip), 'prefixLen': e.cidr.prefixlen,
                             'interface': g.interface, 'edgeIface': _ifname(f'g-{g.hypervisor}', f'g{len(gateways)}')})
    return {
        'edge': {'netns': f'{prefix}edge', 'segments': segments, 'internetIface': 'inet', 'internetIp': INTERNET['router']},
        'internet': {'netns': f'{prefix}inet', 'iface': 'eth0', 'ip': INTERNET['host'], 'prefixLen': 24, 'gateway': INTERNET['router'],
                     'webPort': INTERNET['webPort'], 'webLog': os.path.join(state_dir, 'outside', 'web.log'),
                     'webPid': os.path.join(state_dir, 'outside', 'web.pid')},
        'gateways': gateways,
    }


def namespaces(layout: dict) -> list:
    outside = layout.get('outside')
    return ([layout['router']['netns']] + [h['netns'] for h in layout['hypervisors'].values()]
            + [v['netns'] for v in layout['vms'].values()]
            + ([outside['edge']['netns'], outside['internet']['netns']] if outside else []))


def hypervisors_json(layout: dict) -> dict:
    """What the controller reads: per hypervisor, where its OpenFlow and OVSDB endpoints are."""
    keys = ('openflow', 'ovsdb', 'mode', 'socket', 'mgmt', 'rundir', 'netns', 'bridge', 'tunnelIp', 'datapathId', 'zone')
    return {name: {k: h[k] for k in keys} for name, h in layout['hypervisors'].items()}


def write_json(path: str, data) -> None:
    tmp = f'{path}.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(data, f, indent=2)
        f.write('\n')
    os.replace(tmp, path)


def save_layout(layout: dict) -> None:
    os.makedirs(layout['stateDir'], exist_ok=True)
    write_json(os.path.join(layout['stateDir'], STATE_FILE), layout)


def load_layout(state_dir: str) -> Optional[dict]:
    try:
        with open(os.path.join(state_dir, STATE_FILE), encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        return None
