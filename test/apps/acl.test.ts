import test from 'ava';
import fc from 'fast-check';
import { compileAcl, portRangeMasks } from '../../src/apps/acl';
import type { SimPacket } from '../../src/sdk/sim';
import { Fabric, PIPELINE, edit, twoZones, viewOf, withRemoteFamilyRules } from './helpers';
import { ipv4Of } from '../../src/testing';

test('port ranges become aligned blocks that cover the range exactly, at most 30 of them', (t) => {
  t.deepEqual(portRangeMasks(8000, 8080), [
    { value: 8000, mask: 0xffc0 },
    { value: 8064, mask: 0xfff0 },
    { value: 8080, mask: 0xffff },
  ]);
  t.deepEqual(portRangeMasks(1, 65535).length, 16);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65535 }), (a, b) => {
      const [from, to] = a <= b ? [a, b] : [b, a];
      const blocks = portRangeMasks(from, to);
      let next = from;
      for (const { value, mask } of blocks) {
        const size = (~mask & 0xffff) + 1;
        t.is(value, next);
        t.is(value & ~mask & 0xffff, 0, 'aligned to its size');
        next = value + size;
      }
      t.is(next, to + 1);
      t.true(blocks.length <= 30);
    }),
  );
});

test('rules get strictly decreasing priorities in list order: never two rules at one priority', (t) => {
  const m = edit(twoZones(), (doc) => {
    doc.vpcs[0].acls.unshift({ name: 'range', subnet: 'app', direction: 'ingress', action: 'deny', protocol: 'udp', ports: '1000-1100', remote: { subnet: 'web' } });
  });
  const flows = compileAcl(PIPELINE, viewOf(m)).get('vpc:blue')![0]!.flows.filter((f) => f.priority > 1000 && f.priority < 64000);
  const byPriority = new Map<number, Set<string>>();
  for (const f of flows) byPriority.set(f.priority, (byPriority.get(f.priority) ?? new Set()).add(JSON.stringify(f.instructions, (_k, v) => (typeof v === 'bigint' ? String(v) : v))));
  t.deepEqual([...byPriority.keys()], m.acls.filter((a) => a.vpc === 'blue').map((_, i) => 60000 - i));
  t.is(flows.filter((f) => f.priority === 60000).length, 2 * portRangeMasks(1000, 1100).length, 'each block for IPv4 and IPv6: the tier is dual-stack');
  for (const actions of byPriority.values()) t.is(actions.size, 1, 'one rule, one verdict');
});

function tcp(f: Fabric, from: string, to: string, dport: number, family: 4 | 6 = 4): SimPacket {
  const [src, dst] = [f.vm(from), f.vm(to)];
  const eth_dst = src.subnetKey === dst.subnetKey ? dst.port.mac : src.routerMac;
  const ip: SimPacket = family === 4 ? { eth_type: 0x0800, ipv4_src: ipv4Of(src.port), ipv4_dst: ipv4Of(dst.port) } : { eth_type: 0x86dd, ipv6_src: src.ipv6!, ipv6_dst: dst.ipv6! };
  return { eth_src: src.port.mac, eth_dst, ...ip, nw_ttl: 64, ip_proto: 6, tcp_src: 40000, tcp_dst: dport };
}

test('first match wins: an earlier egress deny overrides a later ingress allow', (t) => {
  const m = edit(twoZones(), (doc) => {
    doc.vpcs[0].acls.unshift({ name: 'no-web-out', subnet: 'web', direction: 'egress', action: 'deny', protocol: 'tcp', ports: '8000-8100', remote: { cidr: '10.1.2.0/24' } });
  });
  const f = new Fabric(viewOf(m));
  t.deepEqual(f.send('web1', tcp(f, 'web1', 'app2', 8080)), []);
  t.deepEqual(new Fabric(viewOf(twoZones())).send('web1', tcp(f, 'web1', 'app2', 8080)).length, 1);
});

test('a CIDR remote and a port-scoped rule select exactly their sources and destinations', (t) => {
  const m = edit(twoZones(), (doc) => {
    doc.vpcs[0].acls.push({ name: 'web1-to-db', subnet: 'db', direction: 'ingress', action: 'allow', protocol: 'tcp', ports: 5432, remote: { cidr: '10.1.1.11/32' } });
    doc.vpcs[0].acls.push({ name: 'app1-only', subnet: 'app', port: 'app1', direction: 'ingress', action: 'allow', protocol: 'tcp', ports: 9000, remote: { subnet: 'web' } });
  });
  const f = new Fabric(viewOf(m));
  t.is(f.send('web1', tcp(f, 'web1', 'db1', 5432)).length, 1);
  t.deepEqual(f.send('web2', tcp(f, 'web2', 'db1', 5432)), []);
  t.is(f.send('web1', tcp(f, 'web1', 'app1', 9000)).length, 1);
  t.deepEqual(f.send('web1', tcp(f, 'web1', 'app2', 9000)), []);
});

test('a deny within a tier takes precedence over the tier default', (t) => {
  const m = edit(twoZones(), (doc) => {
    doc.vpcs[0].acls.push({ name: 'no-ssh-in-web', subnet: 'web', direction: 'ingress', action: 'deny', protocol: 'tcp', ports: 22, remote: { subnet: 'web' } });
  });
  const f = new Fabric(viewOf(m));
  t.deepEqual(f.send('web1', tcp(f, 'web1', 'web2', 22)), []);
  t.is(f.send('web1', tcp(f, 'web1', 'web2', 80)).length, 1);
});

test('a rule without remote guards both families of its dual-stack tier; a CIDR remote only its own family', (t) => {
  const f = new Fabric(viewOf(withRemoteFamilyRules(twoZones())));
  const reaches = (port: number, family: 4 | 6) => f.send('web1', tcp(f, 'web1', 'db1', port, family)).length === 1;
  t.deepEqual(
    [9000, 9100, 9200, 9300].map((port) => `${port}: IPv4 ${reaches(port, 4)}, IPv6 ${reaches(port, 6)}`),
    ['9000: IPv4 true, IPv6 true', '9100: IPv4 true, IPv6 false', '9200: IPv4 false, IPv6 true', '9300: IPv4 false, IPv6 false'],
  );
});
