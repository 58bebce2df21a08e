import test from 'ava';
import {
  buildDhcp6,
  buildPacket,
  Dhcp6BuildError,
  Dhcp6MessageType,
  Dhcp6OptionCode,
  Dhcp6ParseError,
  Dhcp6Status,
  duidFromMac,
  parseDhcp6,
  type Dhcp6Message,
} from '../../src/packet';
import { fieldValues, tsharkFrames, type TsharkNode } from '../helpers/tshark';

// UDP payloads captured from ISC dhclient 4.4.3 (Debian isc-dhcp-client) on a veth, MAC 02:00:00:00:d6:01:
// `dhclient -6 -S` (Information-Request, DUID-LL) and `dhclient -6` (Solicit, DUID-LLT, one IA_NA);
// `tshark -T fields -e udp.payload`. tshark reads them as the comments say.
const DHCLIENT_INFORMATION_REQUEST = Buffer.from('0b7b23c60001000a0003000102000000d60100060008001700180027001f000800020000', 'hex');
const DHCLIENT_SOLICIT = Buffer.from('019133d80001000e0001000132a99d9802000000d60100060008001700180027001f0008000200000003000c0000d60100000e1000001518', 'hex');

const SERVER_DUID = duidFromMac('0a:00:00:07:01:01');

const REPLY: Dhcp6Message = {
  messageType: Dhcp6MessageType.REPLY,
  transactionId: 0x7b23c6,
  options: {
    clientId: Buffer.from('0003000102000000d601', 'hex'),
    serverId: SERVER_DUID,
    dnsServers: ['fd00:53::53', '2001:4860:4860::8888'],
    domainList: ['blue.example.internal', 'example.internal'],
  },
};

test("ISC dhclient's Information-Request and Solicit decode field by field and re-encode to the same bytes", (t) => {
  const info = parseDhcp6(DHCLIENT_INFORMATION_REQUEST);
  t.deepEqual(info, {
    messageType: Dhcp6MessageType.INFORMATION_REQUEST,
    transactionId: 0x7b23c6,
    options: { clientId: Buffer.from('0003000102000000d601', 'hex'), requestedOptions: [23, 24, 39, 31], elapsedTime: 0 },
  });
  t.deepEqual(buildDhcp6(info), DHCLIENT_INFORMATION_REQUEST);
  const solicit = parseDhcp6(DHCLIENT_SOLICIT);
  t.like(solicit, { messageType: Dhcp6MessageType.SOLICIT, transactionId: 0x9133d8 });
  // IAID 0000d601, T1 3600, T2 5400
  t.deepEqual(solicit.options.identityAssociations, [{ code: Dhcp6OptionCode.IA_NA, body: Buffer.from('0000d60100000e1000001518', 'hex') }]);
  t.deepEqual(buildDhcp6(solicit), DHCLIENT_SOLICIT);
});

test('the server DUID is a DUID-LL of the router MAC (RFC 8415 §11.4)', (t) => {
  t.deepEqual(SERVER_DUID, Buffer.from('00030001' + '0a0000070101', 'hex'));
  t.throws(() => duidFromMac('0a:00:00:07:01'), { instanceOf: Dhcp6BuildError });
});

test('our Reply and Advertise round-trip, and tshark reads their DNS servers, search list, DUIDs and status as we meant', async (t) => {
  t.deepEqual(parseDhcp6(buildDhcp6(REPLY)), REPLY);
  const advertise: Dhcp6Message = { ...REPLY, messageType: Dhcp6MessageType.ADVERTISE, options: { ...REPLY.options, status: { code: Dhcp6Status.NO_ADDRS_AVAIL, message: 'stateless' } } };
  t.deepEqual(parseDhcp6(buildDhcp6(advertise)), advertise);
  const frame = (m: Dhcp6Message) =>
    buildPacket([
      { type: 'ethernet', dst: '02:00:00:00:d6:01', src: '0a:00:00:07:01:01' },
      { type: 'ipv6', src: 'fe80::800:ff:fe07:101', dst: 'fe80::ff:fe00:d601' },
      { type: 'udp', srcPort: 547, dstPort: 546 },
      { type: 'raw', data: buildDhcp6(m) },
    ]);
  const [reply, adv] = await tsharkFrames([frame(REPLY), frame(advertise)], ['dhcpv6', '_ws.malformed', '_ws.expert']);
  for (const f of [reply!, adv!]) t.false('_ws.malformed' in f || '_ws.expert' in f, JSON.stringify(f));
  const dhcpv6 = reply!['dhcpv6'] as TsharkNode;
  t.deepEqual(fieldValues(dhcpv6, 'dhcpv6.msgtype'), ['7']);
  t.deepEqual(fieldValues(dhcpv6, 'dhcpv6.xid'), ['0x7b23c6']);
  t.deepEqual(fieldValues(dhcpv6, 'dhcpv6.dns_server'), ['fd00:53::53', '2001:4860:4860::8888']);
  // tshark writes the root label as the final dot: each name is complete, not a partial one
  t.deepEqual(fieldValues(dhcpv6, 'dhcpv6.search_list_entry'), ['blue.example.internal.', 'example.internal.']);
  t.deepEqual(fieldValues(dhcpv6, 'dhcpv6.duidll.link_layer_addr'), ['02:00:00:00:d6:01', '0a:00:00:07:01:01']);
  t.deepEqual(fieldValues(adv!['dhcpv6'], 'dhcpv6.msgtype'), ['2']);
  t.deepEqual(fieldValues(adv!['dhcpv6'], 'dhcpv6.status_code'), ['2']);
  t.deepEqual(fieldValues(adv!['dhcpv6'], 'dhcpv6.status_msg'), ['stateless']);
});

test('what a hostile client can send is a Dhcp6ParseError naming the offset, and nothing is held beyond the message', (t) => {
  const header = '0b000001';
  const bad: [string, number, RegExp][] = [
    ['0b00', 0, /shorter than/],
    ['0c000001', 0, /relay/],
    [header + '000100', 4, /option header runs past/],
    [header + '00010010' + '00030001', 4, /runs past the message/],
    [header + '00010002' + '0003', 4, /a DUID is 3 to 130 bytes/],
    [header + '00010083' + '00'.repeat(131), 4, /a DUID is 3 to 130 bytes/],
    [header + '000800020000' + '000800020000', 10, /appears twice/],
    [header + '00060003' + '001700', 4, /2-byte codes/],
    [header + '00180004' + 'c00c0000', 8, /compressed/],
    [header + '00180003' + '026162', 8, /without its root label/],
    [header + '00180005' + '0561620000', 8, /label runs past/],
    [header + '00180001' + '00', 8, /empty domain name/],
    [header + '00030002' + '0000', 4, /IAID/],
  ];
  for (const [hex, offset, message] of bad) {
    const e = t.throws(() => parseDhcp6(Buffer.from(hex, 'hex')), { instanceOf: Dhcp6ParseError, message }, hex);
    t.is(e?.offset, offset, hex);
  }
  const longName = Array.from({ length: 5 }, () => '3f' + '61'.repeat(63)).join('') + '00';
  t.throws(() => parseDhcp6(Buffer.from(header + '0018' + (longName.length / 2).toString(16).padStart(4, '0') + longName, 'hex')), { message: /over 255 bytes/ });
  // IAs may repeat (one per IAID); unknown options are kept in order
  const ok = parseDhcp6(Buffer.from(header + '00030004' + '00000001' + '00030004' + '00000002' + '00990001ff', 'hex'));
  t.is(ok.options.identityAssociations?.length, 2);
  t.deepEqual(ok.options.other, [{ code: 0x99, data: Buffer.from([0xff]) }]);
});

test('values that cannot be encoded are a Dhcp6BuildError naming the field', (t) => {
  const build = (options: Dhcp6Message['options'], transactionId = 1) => () => buildDhcp6({ messageType: Dhcp6MessageType.REPLY, transactionId, options });
  t.throws(build({}, 0x1000000), { instanceOf: Dhcp6BuildError, message: /transactionId/ });
  t.throws(build({ dnsServers: ['10.0.0.1'] }), { instanceOf: Dhcp6BuildError, message: /dnsServers/ });
  t.throws(build({ domainList: ['a..b'] }), { instanceOf: Dhcp6BuildError, message: /domainList/ });
  t.throws(build({ domainList: ['x'.repeat(64)] }), { instanceOf: Dhcp6BuildError, message: /domainList/ });
});
