import test from 'ava';
import {
  BootpOp,
  buildDhcp,
  buildPacket,
  DhcpMessageType,
  DhcpParseError,
  DhcpBuildError,
  parseDhcp,
  type DhcpMessage,
} from '../../src/packet';
import { fieldValues, problems, tsharkFrames, type TsharkNode } from '../helpers/tshark';

const OFFER: DhcpMessage = {
  op: BootpOp.REPLY,
  htype: 1,
  hlen: 6,
  hops: 0,
  xid: 0x1234abcd,
  secs: 0,
  broadcast: true,
  ciaddr: '0.0.0.0',
  yiaddr: '10.1.1.5',
  siaddr: '10.1.1.1',
  giaddr: '0.0.0.0',
  chaddr: '02:00:00:00:00:05',
  options: {
    messageType: DhcpMessageType.OFFER,
    serverId: '10.1.1.1',
    leaseTime: 3600,
    renewalTime: 1800,
    rebindingTime: 3150,
    subnetMask: '255.255.255.0',
    routers: ['10.1.1.1'],
    dnsServers: ['10.0.0.2', '10.0.0.3'],
    domainName: 'example.internal',
    interfaceMtu: 1400,
    classlessRoutes: [
      { cidr: '10.17.0.0/16', via: '10.1.1.254' },
      { cidr: '192.168.7.128/25', via: '10.1.1.253' },
      { cidr: '0.0.0.0/0', via: '10.1.1.1' },
    ],
  },
};

const frameOf = (dhcp: Buffer) =>
  buildPacket([
    { type: 'ethernet', dst: '02:00:00:00:00:05', src: '0a:00:00:00:00:01' },
    { type: 'ipv4', src: '10.1.1.1', dst: '255.255.255.255' },
    { type: 'udp', srcPort: 67, dstPort: 68 },
    { type: 'raw', data: dhcp },
  ]);

test('an OFFER round-trips; a short message is padded to the 300 bytes of BOOTP', (t) => {
  const bytes = buildDhcp(OFFER);
  t.is(bytes.length, 240 + 94 + 1); // fixed part and cookie, options, END
  t.deepEqual(parseDhcp(bytes), OFFER);
  const nak = { ...OFFER, options: { messageType: DhcpMessageType.NAK } };
  t.is(buildDhcp(nak).length, 300);
  t.deepEqual(parseDhcp(buildDhcp(nak)), nak);
});

test("tshark reads every field and option of our OFFER with the bytes we meant (RFC 2132, RFC 3442's route encoding)", async (t) => {
  const [frame] = await tsharkFrames([frameOf(buildDhcp(OFFER))], ['dhcp', '_ws.malformed', '_ws.expert']);
  const dhcp = frame!['dhcp'] as TsharkNode;
  t.deepEqual(problems({ protocols: '', malformed: '_ws.malformed' in frame!, experts: [] }), []);
  t.like(dhcp, {
    'dhcp.type': '2',
    'dhcp.id': '0x1234abcd',
    'dhcp.flags': '0x8000',
    'dhcp.ip.your': '10.1.1.5',
    'dhcp.ip.server': '10.1.1.1',
    'dhcp.hw.mac_addr': '02:00:00:00:00:05',
    'dhcp.cookie': '99.130.83.99',
  });
  const value = (key: string) => {
    const option = (dhcp['dhcp.option.type_tree'] as TsharkNode[]).find((o) => key in o);
    return option?.['dhcp.option.value'];
  };
  t.is(value('dhcp.option.dhcp'), '02');
  t.is(value('dhcp.option.dhcp_server_id'), '0a:01:01:01');
  t.is(value('dhcp.option.ip_address_lease_time'), '00:00:0e:10');
  t.is(value('dhcp.option.subnet_mask'), 'ff:ff:ff:00');
  t.is(value('dhcp.option.router'), '0a:01:01:01');
  t.is(value('dhcp.option.domain_name_server'), '0a:00:00:02:0a:00:00:03');
  t.is(value('dhcp.option.interface_mtu'), '05:78');
  // width, significant octets of the destination, router: 16.10.17 / 25.192.168.7.128 / 0
  t.is(value('dhcp.option.classless_static_route'), '10:0a:11:0a:01:01:fe:19:c0:a8:07:80:0a:01:01:fd:00:0a:01:01:01');
  t.deepEqual(fieldValues(dhcp, 'dhcp.option.interface_mtu'), ['1400']);
  t.deepEqual(fieldValues(dhcp, 'dhcp.option.domain_name'), ['example.internal']);
  t.deepEqual(fieldValues(dhcp, 'dhcp.option.domain_name_server'), ['10.0.0.2', '10.0.0.3']);
});

test('repeated options are concatenated (RFC 3396) and unknown ones kept', (t) => {
  const bytes = buildDhcp({ ...OFFER, options: { messageType: DhcpMessageType.ACK, other: [{ code: 6, data: Buffer.from([10, 0, 0, 2]) }, { code: 6, data: Buffer.from([10, 0, 0, 3]) }, { code: 200, data: Buffer.from('hi') }] } });
  t.deepEqual(parseDhcp(bytes).options, { messageType: DhcpMessageType.ACK, dnsServers: ['10.0.0.2', '10.0.0.3'], other: [{ code: 200, data: Buffer.from('hi') }] });
});

test('what is not a DHCP message is a DhcpParseError naming the offset', (t) => {
  const good = buildDhcp(OFFER);
  const withByte = (at: number, value: number) => {
    const b = Buffer.from(good);
    b[at] = value;
    return b;
  };
  const optionsStart = 240;
  const cases: [Buffer, number][] = [
    [good.subarray(0, 200), 0],
    [withByte(236, 0), 236], // magic cookie
    [withByte(2, 16), 1], // not Ethernet
    [withByte(optionsStart + 1, 200), optionsStart], // the message type's length runs past the end
    [Buffer.concat([good.subarray(0, optionsStart), Buffer.from([53, 1, 1])]), optionsStart + 3], // no END
    [Buffer.concat([good.subarray(0, optionsStart), Buffer.from([26, 1, 5, 255])]), optionsStart], // MTU is 2 bytes
    [Buffer.concat([good.subarray(0, optionsStart), Buffer.from([121, 3, 33, 1, 2, 255])]), optionsStart + 2], // width 33
  ];
  for (const [bytes, offset] of cases) {
    const e = t.throws(() => parseDhcp(bytes), { instanceOf: DhcpParseError });
    t.is(e?.offset, offset, e?.message);
  }
});

test('values that cannot be encoded are a DhcpBuildError naming the field', (t) => {
  t.throws(() => buildDhcp({ ...OFFER, yiaddr: '10.1.1.256' }), { instanceOf: DhcpBuildError, message: /yiaddr/ });
  t.throws(() => buildDhcp({ ...OFFER, options: { routers: ['x'] } }), { instanceOf: DhcpBuildError, message: /routers/ });
  t.throws(() => buildDhcp({ ...OFFER, options: { domainName: 'a'.repeat(256) } }), { instanceOf: DhcpBuildError, message: /domainName/ });
});
