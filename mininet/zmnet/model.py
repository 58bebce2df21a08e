"""The part of a zonemesh model (YAML or JSON, see models/two-zones.yaml and src/model/) that
the topology needs: zones with their underlay, hypervisors, and VM ports with their subnet.

The controller validates the model in full (src/model/validate.ts); this reader checks only what
would otherwise break the topology (unknown references, addresses outside their CIDR, interface
names longer than Linux allows) and derives the same defaults as the TypeScript side.
"""
import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Dict, List, Optional

import yaml

IFNAMSIZ = 15  # Linux interface names: at most 15 characters
MAC_RE = re.compile(r'^[0-9a-f]{2}(:[0-9a-f]{2}){5}$')
# Interface names a port must not take on its hypervisor: they exist there already.
RESERVED_HV_IFACES = {'lo', 'eth1', 'br-phy', 'ovs-netdev', 'genev_sys_6081', 'vxlan_sys_4789'}


class ModelError(Exception):
    def __init__(self, source: str, problems: List[str]):
        super().__init__(f'{source}: invalid model:\n  ' + '\n  '.join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Zone:
    name: str
    underlay: ipaddress.IPv4Network

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """the underlay router's address on this zone: the first host address"""
        return self.underlay.network_address + 1


@dataclass(frozen=True)
class Hypervisor:
    name: str
    zone: str
    tunnel_ip: ipaddress.IPv4Address
    datapath_id: int
    bridge: str

    @property
    def dpid_hex(self) -> str:
        """other_config:datapath-id wants exactly 16 hex digits"""
        return f'{self.datapath_id:016x}'


@dataclass(frozen=True)
class Port:
    name: str
    vpc: str
    subnet: str
    mac: str
    ip: ipaddress.IPv4Address
    hypervisor: str
    interface: str
    cidr: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    ofport: Optional[int] = None
    # dual-stack subnets: the port's IPv6 address (the model's, or EUI-64 from the MAC) and its /64
    ip6: Optional[ipaddress.IPv6Address] = None
    prefix6: Optional[ipaddress.IPv6Network] = None


@dataclass(frozen=True)
class ExternalGateway:
    hypervisor: str
    ip: ipaddress.IPv4Address
    interface: str


@dataclass(frozen=True)
class ExternalNetwork:
    """A zone's external segment (docs/north-south.md): the edge router's side and its gateways."""
    name: str
    zone: str
    cidr: ipaddress.IPv4Network
    next_hop: ipaddress.IPv4Address
    next_hop_mac: Optional[str]
    gateways: List[ExternalGateway]


@dataclass(frozen=True)
class Model:
    source: str
    zones: List[Zone]
    hypervisors: List[Hypervisor]
    ports: List[Port]
    external_networks: List[ExternalNetwork] = ()

    def zone(self, name: str) -> Zone:
        return next(z for z in self.zones if z.name == name)

    def hypervisor(self, name: str) -> Hypervisor:
        return next(h for h in self.hypervisors if h.name == name)

    def port(self, name: str) -> Port:
        return next(p for p in self.ports if p.name == name)


def derived_datapath_id(hypervisor: str) -> int:
    """Same as derivedDatapathId in src/model/addressing.ts, for models that pin none."""
    digest = hashlib.sha256(f'zonemesh-dpid:{hypervisor}'.encode()).digest()
    return int.from_bytes(digest[:8], 'big') & 0x0000FFFFFFFFFFFF


def _datapath_id(value, name: str, where: str, problems: List[str]) -> int:
    if value is None:
        return derived_datapath_id(name)
    if isinstance(value, bool):
        pass
    elif isinstance(value, int) and 0 <= value < 1 << 64:
        return value
    elif isinstance(value, str) and re.fullmatch(r'0x[0-9a-fA-F]{1,16}|\d+', value):
        n = int(value, 0) if value.lower().startswith('0x') else int(value)
        if n < 1 << 64:
            return n
    problems.append(f'{where}.datapathId: must be a number or a hex string such as "0x1a"')
    return 0


def eui64_address(prefix: ipaddress.IPv6Network, mac: str) -> ipaddress.IPv6Address:
    """Same as slaacAddress in src/model: the MAC's universal/local bit flipped, ff:fe in the middle."""
    b = bytes.fromhex(mac.replace(':', ''))
    iid = bytes([b[0] ^ 0x02]) + b[1:3] + b'\xff\xfe' + b[3:6]
    return prefix.network_address + int.from_bytes(iid, 'big')


def load_model(path: str) -> Model:
    with open(path, encoding='utf-8') as f:
        text = f.read()
    doc = json.loads(text) if path.endswith('.json') else yaml.safe_load(text)
    return parse_model(doc, path)


def parse_model(doc, source: str = '(model)') -> Model:
    problems: List[str] = []
    if not isinstance(doc, dict):
        raise ModelError(source, ['(root): must be an object'])

    def items(obj, key, where):
        v = obj.get(key)
        if v is None:
            return []
        if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
            problems.append(f'{where}{key}: must be a list of objects')
            return []
        return v

    def text(obj, key, where, default=None):
        v = obj.get(key, default)
        if not isinstance(v, str) or not v:
            problems.append(f'{where}.{key}: is required (a non-empty string)')
            return ''
        return v

    def addr(value, where):
        try:
            return ipaddress.IPv4Address(value)
        except (ipaddress.AddressValueError, ValueError):
            problems.append(f'{where}: {value!r} is not an IPv4 address')
            return None

    def net(value, where):
        try:
            return ipaddress.IPv4Network(value, strict=True)
        except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError, TypeError):
            problems.append(f'{where}: {value!r} is not an IPv4 CIDR with no host bits')
            return None

    zones: Dict[str, Zone] = {}
    for i, z in enumerate(items(doc, 'zones', '')):
        w = f'zones[{i}]'
        name = text(z, 'name', w)
        underlay = net(z.get('underlay'), f'{w}.underlay')
        if name in zones:
            problems.append(f'{w}.name: duplicate zone {name!r}')
        if underlay is not None and underlay.prefixlen > 29:
            problems.append(f'{w}.underlay: {underlay} is too small for a router and hypervisors')
        if name and underlay is not None:
            zones[name] = Zone(name, underlay)

    hypervisors: Dict[str, Hypervisor] = {}
    for i, h in enumerate(items(doc, 'hypervisors', '')):
        w = f'hypervisors[{i}]'
        name = text(h, 'name', w)
        zone = text(h, 'zone', w)
        tip = addr(h.get('tunnelIp'), f'{w}.tunnelIp')
        bridge = text(h, 'bridge', w, 'br-int')
        z = zones.get(zone)
        if zone and z is None:
            problems.append(f'{w}.zone: unknown zone {zone!r}')
        if z is not None and tip is not None:
            if tip not in z.underlay:
                problems.append(f'{w}.tunnelIp: {tip} is outside zone {zone}\'s underlay {z.underlay}')
            elif tip in (z.gateway, z.underlay.network_address, z.underlay.broadcast_address):
                problems.append(f'{w}.tunnelIp: {tip} is reserved ({z.gateway} is the underlay router)')
        if name in hypervisors:
            problems.append(f'{w}.name: duplicate hypervisor {name!r}')
        if len(bridge) > IFNAMSIZ or bridge in RESERVED_HV_IFACES:
            problems.append(f'{w}.bridge: {bridge!r} cannot be used as a bridge name')
        dpid = _datapath_id(h.get('datapathId'), name, w, problems)
        if name and tip is not None:
            hypervisors[name] = Hypervisor(name, zone, tip, dpid, bridge)
    for attr, what in (('tunnel_ip', 'tunnel IP'), ('datapath_id', 'datapath id')):
        seen = {}
        for hv in hypervisors.values():
            k = getattr(hv, attr)
            if k in seen:
                problems.append(f'hypervisor {hv.name}: duplicate {what} (also {seen[k]})')
            seen[k] = hv.name

    subnets = {}
    for i, v in enumerate(items(doc, 'vpcs', '')):
        vpc = text(v, 'name', f'vpcs[{i}]')
        for j, s in enumerate(items(v, 'subnets', f'vpcs[{i}].')):
            w = f'vpcs[{i}].subnets[{j}]'
            cidr = net(s.get('cidr'), f'{w}.cidr')
            gw = addr(s.get('gateway'), f'{w}.gateway')
            v6 = s.get('ipv6')
            prefix6, slaac = None, False
            if v6 is not None:
                try:
                    prefix6 = ipaddress.IPv6Network(v6['prefix'], strict=True)
                    slaac = v6.get('slaac') is True
                except (KeyError, TypeError, ValueError):
                    problems.append(f'{w}.ipv6: {v6!r} is not {{ prefix: IPv6 CIDR with no host bits, slaac: bool }}')
            if cidr is not None and gw is not None:
                if gw not in cidr:
                    problems.append(f'{w}.gateway: {gw} is outside {cidr}')
                subnets[(vpc, text(s, 'name', w))] = (cidr, gw, prefix6, slaac)

    ports: List[Port] = []
    for i, p in enumerate(items(doc, 'ports', '')):
        w = f'ports[{i}]'
        name = text(p, 'name', w)
        vpc = text(p, 'vpc', w)
        subnet = text(p, 'subnet', w)
        mac = text(p, 'mac', w)
        ip = addr(p.get('ip'), f'{w}.ip')
        hv = text(p, 'hypervisor', w)
        iface = text(p, 'interface', w, name)
        ofport = p.get('ofport')
        if mac and not MAC_RE.match(mac):
            problems.append(f'{w}.mac: {mac!r} is not a lower-case MAC address')
        if hv and hv not in hypervisors:
            problems.append(f'{w}.hypervisor: unknown hypervisor {hv!r}')
        if len(iface) > IFNAMSIZ or '/' in iface or ' ' in iface:
            problems.append(f'{w}.interface: {iface!r} is not a Linux interface name (at most {IFNAMSIZ} characters)'
                            + ('; set `interface:` in the model' if 'interface' not in p else ''))
        if iface in RESERVED_HV_IFACES or (hv in hypervisors and iface == hypervisors[hv].bridge):
            problems.append(f'{w}.interface: {iface!r} is taken on the hypervisor')
        if ofport is not None and (not isinstance(ofport, int) or isinstance(ofport, bool) or not 1 <= ofport <= 0xfeff):
            problems.append(f'{w}.ofport: must be an integer in 1..65279')
            ofport = None
        sub = subnets.get((vpc, subnet))
        if sub is None:
            problems.append(f'{w}.subnet: unknown subnet {subnet!r} in VPC {vpc!r}')
            continue
        if ip is not None and ip not in sub[0]:
            problems.append(f'{w}.ip: {ip} is outside subnet {subnet} ({sub[0]})')
        ip6 = None
        if p.get('ipv6') is not None:
            try:
                ip6 = ipaddress.IPv6Address(p['ipv6'])
            except ValueError:
                problems.append(f'{w}.ipv6: {p["ipv6"]!r} is not an IPv6 address')
        elif sub[2] is not None and sub[3] and MAC_RE.match(mac):
            ip6 = eui64_address(sub[2], mac)
        if ip6 is not None and (sub[2] is None or ip6 not in sub[2]):
            problems.append(f'{w}.ipv6: {ip6} is outside subnet {subnet}\'s IPv6 prefix ({sub[2]})')
        if name and ip is not None:
            ports.append(Port(name, vpc, subnet, mac, ip, hv, iface, sub[0], sub[1], ofport, ip6, sub[2]))
    seen_names, seen_ifaces = set(), set()
    for port in ports:
        if port.name in seen_names:
            problems.append(f'port {port.name}: duplicate port name')
        if (port.hypervisor, port.interface) in seen_ifaces:
            problems.append(f'port {port.name}: interface {port.interface!r} is already used on {port.hypervisor}')
        seen_names.add(port.name)
        seen_ifaces.add((port.hypervisor, port.interface))

    external: List[ExternalNetwork] = []
    for i, e in enumerate(items(doc, 'externalNetworks', '')):
        w = f'externalNetworks[{i}]'
        name = text(e, 'name', w)
        cidr = net(e.get('cidr'), f'{w}.cidr')
        next_hop = addr(e.get('nextHop'), f'{w}.nextHop')
        mac = e.get('nextHopMac')
        if mac is not None and not (isinstance(mac, str) and MAC_RE.match(mac)):
            problems.append(f'{w}.nextHopMac: {mac!r} is not a lower-case MAC address')
        gateways = []
        for j, g in enumerate(items(e, 'gateways', f'{w}.')):
            gw = f'{w}.gateways[{j}]'
            hv = text(g, 'hypervisor', gw)
            ip = addr(g.get('ip'), f'{gw}.ip')
            iface = text(g, 'interface', gw, name)
            if hv and hv not in hypervisors:
                problems.append(f'{gw}.hypervisor: unknown hypervisor {hv!r}')
            if len(iface) > IFNAMSIZ or iface in RESERVED_HV_IFACES or any(p.hypervisor == hv and p.interface == iface for p in ports):
                problems.append(f'{gw}.interface: {iface!r} cannot be the segment port on {hv}')
            if ip is not None:
                gateways.append(ExternalGateway(hv, ip, iface))
        if name and cidr is not None and next_hop is not None:
            external.append(ExternalNetwork(name, text(e, 'zone', w), cidr, next_hop, mac, gateways))

    if problems:
        raise ModelError(source, problems)
    return Model(source, list(zones.values()), list(hypervisors.values()), ports, external)
