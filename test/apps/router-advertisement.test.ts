import test, { type ExecutionContext } from 'ava';
import { DistributedRouterApp } from '../../src/apps/distributed-router';
import { SolicitationLimiter, subnetRouterAdvertisement } from '../../src/apps/distributed-router/ra';
import { bindAppServices } from '../../src/apps/registry';
import { linkLocalAddress } from '../../src/model';
import { buildPacket, findLayer, parsePacket, type PacketOut } from '../../src/sdk';
import { FakeSwitch, TestModelStore, fakePort, runApps } from '../../src/testing';

/** hv1: web1 (ofport 1) of a SLAAC subnet, app1 (ofport 2) of a DHCPv6 one, old1 (ofport 3) IPv4-only */
function modelDoc() {
  return {
    zones: [{ name: 'a', underlay: '172.16.1.0/24' }],
    hypervisors: [{ name: 'hv1', zone: 'a', tunnelIp: '172.16.1.11', datapathId: '0x11' }],
    vpcs: [
      {
        name: 'blue',
        vni: 7,
        subnets: [
          { name: 'web', cidr: '10.1.1.0/24', gateway: '10.1.1.1', ipv6: { prefix: 'fd00:7:1::/64', slaac: true } },
          { name: 'app', cidr: '10.1.2.0/24', gateway: '10.1.2.1', ipv6: { prefix: 'fd00:7:2::/64', slaac: false } },
          { name: 'old', cidr: '10.1.3.0/24', gateway: '10.1.3.1' },
        ],
      },
    ],
    ports: [
      { name: 'web1', vpc: 'blue', subnet: 'web', mac: '02:00:00:07:01:01', ip: '10.1.1.11', hypervisor: 'hv1' },
      { name: 'app1', vpc: 'blue', subnet: 'app', mac: '02:00:00:07:02:01', ip: '10.1.2.11', hypervisor: 'hv1', ipv6: 'fd00:7:2::11' },
      { name: 'old1', vpc: 'blue', subnet: 'old', mac: '02:00:00:07:03:01', ip: '10.1.3.11', hypervisor: 'hv1' },
    ],
  };
}

const model = new TestModelStore(modelDoc());
const subnet = (name: string) => model.current().subnets.find((s) => s.name === name)!;

async function router(t: ExecutionContext) {
  const apps = await runApps({ apps: { 'distributed-router': DistributedRouterApp }, model: new TestModelStore(modelDoc()), bindServices: bindAppServices });
  t.teardown(() => apps.stop());
  const sw = new FakeSwitch({ dpid: 0x11n, ports: [fakePort(1, 'web1'), fakePort(2, 'app1'), fakePort(3, 'old1')] });
  t.teardown(() => sw.close());
  const first = [sw.nextMessage('PACKET_OUT', (m) => portOf(m) === 1), sw.nextMessage('PACKET_OUT', (m) => portOf(m) === 2)];
  await apps.connect(sw);
  const tableId = apps.runtime.pipeline.table('l3.gateway').id;
  const packetIn = (frame: Buffer, inPort: number) =>
    sw.send({ type: 'PACKET_IN', xid: 0, bufferId: 0xffffffff, totalLen: frame.length, reason: 1, tableId, cookie: 0n, match: [{ field: 'in_port', value: inPort }], data: frame });
  return { sw, first: await Promise.all(first), packetIn };
}

const portOf = (out: PacketOut) => (out.actions[0] as { port: number }).port;
const ra = (out: PacketOut) => parsePacket(out.data);

function rs(mac: string, src = linkLocalAddress(mac)): Buffer {
  return buildPacket([
    { type: 'ethernet', dst: '33:33:00:00:00:02', src: mac },
    { type: 'ipv6', src, dst: 'ff02::2', hopLimit: 255 },
    { type: 'icmpv6', icmpType: 133 },
    { type: 'ndp-rs', options: src === '::' ? [] : [{ type: 'source-lla', mac }] },
  ]);
}

test('each dual-stack port hears its router on connect: prefix, SLAAC or DHCPv6 flags, MTU 1400, from the router link-local', async (t) => {
  const { first } = await router(t);
  const [web, app] = first.map(ra);
  t.like(findLayer(web!, 'ethernet'), { src: subnet('web').routerMac, dst: '33:33:00:00:00:01' });
  t.like(findLayer(web!, 'ipv6'), { src: linkLocalAddress(subnet('web').routerMac), dst: 'ff02::1', hopLimit: 255 });
  const webRa = findLayer(web!, 'ndp-ra')!;
  t.like(webRa, { managed: false, other: false, routerLifetime: 1800, curHopLimit: 64 });
  t.deepEqual(webRa.options.slice(1), [
    { type: 'mtu', mtu: 1400 },
    { type: 'prefix', prefix: 'fd00:7:1::', prefixLength: 64, onLink: true, autonomous: true, validLifetime: 2_592_000, preferredLifetime: 604_800 },
  ]);
  const appRa = findLayer(app!, 'ndp-ra')!;
  t.like(appRa, { managed: true, other: true });
  t.like(appRa.options[2], { prefix: 'fd00:7:2::', autonomous: false });
});

test('a SLAAC subnet with IPv6 DNS servers advertises O (other configuration by stateless DHCPv6) and not M', (t) => {
  const withDns = { ...subnet('web'), ipv6: { ...subnet('web').ipv6!, dns: ['fd00:53::53'] } };
  const advertised = findLayer(parsePacket(subnetRouterAdvertisement(withDns)!), 'ndp-ra')!;
  t.like(advertised, { managed: false, other: true });
  t.like(advertised.options[2], { autonomous: true });
});

test('an RS is answered with a unicast RA to the solicitor, at most once per 3 s per port; an IPv4-only port gets nothing', async (t) => {
  const { sw, packetIn } = await router(t);
  const mac = '02:00:00:07:01:01';
  // RAs to all nodes keep coming from the connect; the answer is the unicast one
  const unicast = (m: PacketOut) => findLayer(ra(m), 'ethernet')!.dst !== '33:33:00:00:00:01';
  let next = sw.nextMessage('PACKET_OUT', unicast);
  packetIn(rs(mac), 1);
  const answer = await next;
  t.is(portOf(answer), 1);
  t.like(findLayer(ra(answer), 'ethernet'), { dst: mac });
  t.like(findLayer(ra(answer), 'ipv6'), { dst: linkLocalAddress(mac) });
  // a flood of RS: no second answer; the IPv4-only port's RS neither
  next = sw.nextMessage('PACKET_OUT', unicast, 500);
  for (let i = 0; i < 20; i++) packetIn(rs(mac), 1);
  packetIn(rs('02:00:00:07:03:01'), 3);
  await t.throwsAsync(next, { message: /no PACKET_OUT/ });
});

test('the solicitation limiter lets each port ask once per 3 s, each port on its own', (t) => {
  let now = 0;
  const limiter = new SolicitationLimiter(() => now);
  t.true(limiter.take(1n, 1));
  t.false(limiter.take(1n, 1));
  t.true(limiter.take(1n, 2), 'per port');
  now = 3_000;
  t.true(limiter.take(1n, 1));
});
