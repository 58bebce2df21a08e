import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  decodeMessage,
  decodeMessageOrThrow,
  decodeOnfFlowMonitorRequests,
  encodeMessage,
  encodeOnfFlowMonitorRequests,
  mergeMultipartReplies,
  OfDecodeError,
  OfEncodeError,
  OFP_MAX_MESSAGE_LEN,
  OFPG_ANY,
  OFPMPF_REPLY_MORE,
  OFPP,
  OFPTT_ALL,
  splitMultipartReply,
  type FlowStats,
  type MultipartReply,
  type MultipartReplyBody,
  type MultipartRequestBody,
  type OfMessage,
  type Port,
  type TableFeatures,
} from '../../src/openflow';
import { formatMultipart } from '../../src/openflow/text/multipart';
import { RYU_OF13_DIR } from '../helpers/paths';

function roundTrip(msg: OfMessage): OfMessage {
  return decodeMessageOrThrow(encodeMessage(msg));
}

function decodeError(bytes: Buffer): OfDecodeError {
  const res = decodeMessage(bytes);
  if (res.ok) throw new Error(`expected a decode error, got ${res.message.type}`);
  return res.error;
}

/** A reply message's bytes with its body replaced (multipart header kept), header length fixed up. */
function replyBytes(mpType: number, body: Buffer): Buffer {
  const head = Buffer.from([4, 19, 0, 0, 0, 0, 0, 9, mpType >> 8, mpType & 0xff, 0, 0, 0, 0, 0, 0]);
  const msg = Buffer.concat([head, body]);
  msg.writeUInt16BE(msg.length, 2);
  return msg;
}

const port = (portNo: number): Port => ({
  portNo, hwAddr: '02:00:00:00:00:01', name: `p${portNo}`, config: 0, state: 4, curr: 0x2808, advertised: 0,
  supported: 0, peer: 0, currSpeed: 10_000_000, maxSpeed: 10_000_000,
});

const flow = (i: number): FlowStats => ({
  tableId: i % 4, durationSec: i, durationNsec: 500, priority: 100 + (i % 50), idleTimeout: 0, hardTimeout: 0, flags: 1,
  cookie: 0x1234_0000_0000n + BigInt(i), packetCount: BigInt(i * 3), byteCount: BigInt(i * 300),
  match: [
    { field: 'in_port', value: (i % 48) + 1 },
    { field: 'eth_dst', value: '02:00:00:00:00:02' },
    { field: 'eth_type', value: 0x0800 },
  ],
  instructions: [{ type: 'apply_actions', actions: [{ type: 'output', port: 2, maxLen: 0 }] }, { type: 'goto_table', tableId: 5 }],
});

const tableFeatures: TableFeatures = {
  tableId: 3, name: 'l2', metadataMatch: 0xffff_ffff_ffff_ffffn, metadataWrite: 0n, config: 0, maxEntries: 1_000_000,
  properties: [
    { type: 'instructions', instructionIds: [{ type: 1, data: Buffer.alloc(0) }, { type: 0xffff, data: Buffer.from('00002320', 'hex') }] },
    { type: 'next_tables_miss', tableIds: [4, 5, 6] },
    { type: 'apply_actions_miss', actionIds: [{ type: 0, data: Buffer.alloc(0) }] },
    { type: 'match', oxmIds: [{ header: 0x80000004 }, { header: 0xffff0008, experimenter: 0x4f4e4600 }] },
    { type: 'wildcards', oxmIds: [] },
    { type: 'experimenter_miss', experimenter: 0x2320, expType: 7, data: Buffer.from([1, 2, 3]) },
  ],
};

const requests: MultipartRequestBody[] = [
  { mpType: 'DESC' },
  { mpType: 'FLOW', tableId: OFPTT_ALL, outPort: OFPP.ANY, outGroup: OFPG_ANY, cookie: 5n, cookieMask: 0xffn, match: [{ field: 'eth_type', value: 0x0806 }] },
  { mpType: 'AGGREGATE', tableId: 0, outPort: 3, outGroup: 7, cookie: 0n, cookieMask: 0n, match: [] },
  { mpType: 'TABLE' },
  { mpType: 'PORT_STATS', portNo: OFPP.ANY },
  { mpType: 'QUEUE', portNo: 1, queueId: 0xffffffff },
  { mpType: 'GROUP', groupId: 0xfffffffc },
  { mpType: 'GROUP_DESC' },
  { mpType: 'GROUP_FEATURES' },
  { mpType: 'METER', meterId: 3 },
  { mpType: 'METER_CONFIG', meterId: 0xffffffff },
  { mpType: 'METER_FEATURES' },
  { mpType: 'TABLE_FEATURES', tables: [] },
  { mpType: 'TABLE_FEATURES', tables: [tableFeatures] },
  { mpType: 'PORT_DESC' },
  { mpType: 'EXPERIMENTER', experimenter: 0x2320, expType: 4, data: Buffer.from('abc') },
];

const replies: MultipartReplyBody[] = [
  { mpType: 'DESC', mfrDesc: 'Nicira, Inc.', hwDesc: 'Open vSwitch', swDesc: '3.1.0', serialNum: 'None', dpDesc: 'br-int' },
  { mpType: 'FLOW', flows: [flow(1), flow(2)] },
  { mpType: 'AGGREGATE', packetCount: 7n, byteCount: 574n, flowCount: 6 },
  { mpType: 'TABLE', tables: [{ tableId: 0, activeCount: 4, lookupCount: 10n, matchedCount: 8n }] },
  {
    mpType: 'PORT_STATS',
    ports: [{
      portNo: 7, rxPackets: 1n, txPackets: 2n, rxBytes: 3n, txBytes: 4n, rxDropped: 5n, txDropped: 6n, rxErrors: 7n, txErrors: 8n,
      rxFrameErr: 9n, rxOverErr: 10n, rxCrcErr: 11n, collisions: 12n, durationSec: 13, durationNsec: 14,
    }],
  },
  { mpType: 'QUEUE', queues: [{ portNo: 1, queueId: 2, txBytes: 3n, txPackets: 4n, txErrors: 5n, durationSec: 6, durationNsec: 7 }] },
  {
    mpType: 'GROUP',
    groups: [{
      groupId: 1, refCount: 2, packetCount: 3n, byteCount: 4n, durationSec: 5, durationNsec: 6,
      bucketStats: [{ packetCount: 1n, byteCount: 2n }, { packetCount: 3n, byteCount: 4n }],
    }],
  },
  {
    mpType: 'GROUP_DESC',
    groups: [
      { groupType: 'select', groupId: 9, buckets: [{ weight: 1, watchPort: OFPP.ANY, watchGroup: OFPG_ANY, actions: [{ type: 'output', port: 1, maxLen: 0 }] }] },
      { groupType: 'fast_failover', groupId: 10, buckets: [] },
    ],
  },
  { mpType: 'GROUP_FEATURES', types: 15, capabilities: 5, maxGroups: [1, 2, 3, 4], actions: [5, 6, 7, 8] },
  {
    mpType: 'METER',
    meters: [{ meterId: 1, flowCount: 2, packetInCount: 3n, byteInCount: 4n, durationSec: 5, durationNsec: 6, bandStats: [{ packetCount: 7n, byteCount: 8n }] }],
  },
  {
    mpType: 'METER_CONFIG',
    meters: [{
      flags: 9, meterId: 1,
      bands: [
        { type: 'drop', rate: 1000, burstSize: 10 },
        { type: 'dscp_remark', rate: 500, burstSize: 0, precLevel: 2 },
        { type: 'experimenter', rate: 1, burstSize: 2, experimenter: 0x2320, data: Buffer.from([9, 9, 9, 9, 9, 9, 9, 9]) },
      ],
    }],
  },
  { mpType: 'METER_FEATURES', maxMeter: 1 << 24, bandTypes: 6, capabilities: 15, maxBands: 255, maxColor: 3 },
  { mpType: 'TABLE_FEATURES', tables: [tableFeatures, { ...tableFeatures, tableId: 4, properties: [] }] },
  { mpType: 'PORT_DESC', ports: [port(1), port(0xfffffffe)] },
  { mpType: 'EXPERIMENTER', experimenter: 0xdeadbeef, expType: 1, data: Buffer.from('reply data') },
];

for (const [i, body] of requests.entries()) {
  test(`request ${i}, ${body.mpType}, round-trips`, (t) => {
    const msg: OfMessage = { type: 'MULTIPART_REQUEST', xid: 0x11, flags: 0, body };
    t.deepEqual(roundTrip(msg), msg);
  });
}

for (const body of replies) {
  test(`reply ${body.mpType} round-trips`, (t) => {
    const msg: OfMessage = { type: 'MULTIPART_REPLY', xid: 0x22, flags: OFPMPF_REPLY_MORE, body };
    t.deepEqual(roundTrip(msg), msg);
  });
}

test('GROUP_MOD, METER_MOD and QUEUE_GET_CONFIG_* round-trip', (t) => {
  const messages: OfMessage[] = [
    {
      type: 'GROUP_MOD', xid: 1, command: 'modify', groupType: 'indirect', groupId: 3,
      buckets: [{ weight: 0, watchPort: OFPP.ANY, watchGroup: OFPG_ANY, actions: [{ type: 'group', groupId: 4 }] }],
    },
    { type: 'GROUP_MOD', xid: 2, command: 'delete', groupType: 'all', groupId: 0xfffffffc, buckets: [] },
    { type: 'METER_MOD', xid: 3, command: 'add', flags: 5, meterId: 1, bands: [{ type: 'drop', rate: 10, burstSize: 1 }] },
    { type: 'QUEUE_GET_CONFIG_REQUEST', xid: 4, port: 2 },
    {
      type: 'QUEUE_GET_CONFIG_REPLY', xid: 5, port: 2,
      queues: [{ queueId: 1, port: 2, properties: [{ type: 'min_rate', rate: 100 }, { type: 'experimenter', experimenter: 7, data: Buffer.from([1, 2, 3]) }] }],
    },
  ];
  for (const msg of messages) t.deepEqual(roundTrip(msg), msg);
});

test('the unaligned experimenter queue properties of vector 4-36 decode and re-encode exactly', (t) => {
  const bytes = readFileSync(join(RYU_OF13_DIR, '4-36-ofp_queue_get_config_reply.packet'));
  const msg = decodeMessageOrThrow(bytes);
  if (msg.type !== 'QUEUE_GET_CONFIG_REPLY') return t.fail(msg.type);
  t.deepEqual(msg.queues.map((q) => q.properties.at(-1)), [
    { type: 'experimenter', experimenter: 999, data: Buffer.alloc(0) },
    { type: 'experimenter', experimenter: 999, data: Buffer.from([1]) },
    { type: 'experimenter', experimenter: 999, data: Buffer.from([1, 2]) },
  ]);
  t.true(encodeMessage(msg).equals(bytes));
});

test('an unknown multipart type is unknown_type at the multipart header', (t) => {
  const err = decodeError(replyBytes(0x00ee, Buffer.alloc(0)));
  t.is(err.kind, 'unknown_type');
  t.is(err.context.offset, 8);
  t.is(err.context.xid, 9);
});

test('a flow stats entry whose length overruns the body is bad_length at the entry', (t) => {
  const body = encodeMessage({ type: 'MULTIPART_REPLY', xid: 9, flags: 0, body: { mpType: 'FLOW', flows: [flow(1), flow(2)] } }).subarray(16);
  const second = body.readUInt16BE(0);
  body.writeUInt16BE(body.length - second + 8, second); // the second entry claims 8 bytes too many
  const err = decodeError(replyBytes(1, body));
  t.is(err.kind, 'bad_length');
  t.is(err.context.offset, 16 + second);
});

test('a flow stats entry shorter than its fixed part is bad_length', (t) => {
  const body = encodeMessage({ type: 'MULTIPART_REPLY', xid: 9, flags: 0, body: { mpType: 'FLOW', flows: [flow(1)] } }).subarray(16);
  body.writeUInt16BE(40, 0);
  const err = decodeError(replyBytes(1, body));
  t.is(err.kind, 'bad_length');
  t.is(err.context.offset, 16);
});

test('length fields inside entries are bounded', (t) => {
  const cases: [string, number, Buffer][] = [
    // table stats are 24 bytes each
    ['table stats of 20 bytes', 3, Buffer.alloc(20)],
    // group stats length 48 holds half a bucket counter
    ['group stats with a partial counter', 6, Buffer.concat([Buffer.from([0, 48]), Buffer.alloc(46)])],
    // meter config with a drop band of length 8
    ['a meter band shorter than 16', 10, Buffer.from('0018000000000001' + '00010008000000000000000000000000', 'hex')],
    // table features whose property claims 2 bytes
    ['a table feature property shorter than its header', 12, (() => {
      const b = Buffer.alloc(72);
      b.writeUInt16BE(72, 0);
      b.writeUInt16BE(2, 66);
      return b;
    })()],
    // a next_tables property of length 5 whose 3 padding bytes are missing
    ['table feature padding past the table', 12, (() => {
      const b = Buffer.alloc(69);
      b.writeUInt16BE(69, 0);
      b.writeUInt16BE(2, 64);
      b.writeUInt16BE(5, 66);
      return b;
    })()],
    ['a port description list of 60 bytes', 13, Buffer.alloc(60)],
  ];
  for (const [what, mpType, body] of cases) {
    t.is(decodeError(replyBytes(mpType, body)).kind, 'bad_length', what);
  }
});

test('fixed-size request and reply bodies must have their exact size', (t) => {
  t.is(decodeError(replyBytes(2, Buffer.alloc(16))).kind, 'bad_length', 'aggregate reply of 16 bytes');
  t.is(decodeError(replyBytes(0, Buffer.alloc(1057))).kind, 'bad_length', 'desc reply of 1057 bytes');
  const request = Buffer.from('0412001400000001000400000000000000000001', 'hex'); // port stats request with 4-byte body
  t.is(decodeError(request).kind, 'bad_length');
});

test('unknown group types, commands and band types are refused with typed errors', (t) => {
  const groupMod = encodeMessage({ type: 'GROUP_MOD', xid: 1, command: 'add', groupType: 'all', groupId: 1, buckets: [] });
  groupMod[10] = 9;
  t.is(decodeError(groupMod).kind, 'bad_value');
  const meterMod = encodeMessage({ type: 'METER_MOD', xid: 1, command: 'add', flags: 0, meterId: 1, bands: [{ type: 'drop', rate: 1, burstSize: 1 }] });
  meterMod[17] = 7;
  const err = decodeError(meterMod);
  t.is(err.kind, 'unknown_type');
  t.is(err.context.offset, 16);
  t.throws(() => encodeMessage({ type: 'GROUP_MOD', xid: 1, command: 'add', groupType: 'bogus' as 'all', groupId: 1, buckets: [] }), {
    instanceOf: OfEncodeError,
  });
});

test('mergeMultipartReplies concatenates list bodies and keeps the last part flags', (t) => {
  const a: MultipartReply = { type: 'MULTIPART_REPLY', xid: 4, flags: OFPMPF_REPLY_MORE, body: { mpType: 'PORT_DESC', ports: [port(1)] } };
  const b: MultipartReply = { type: 'MULTIPART_REPLY', xid: 4, flags: 0, body: { mpType: 'PORT_DESC', ports: [port(2), port(3)] } };
  t.deepEqual(mergeMultipartReplies([a, b]), { type: 'MULTIPART_REPLY', xid: 4, flags: 0, body: { mpType: 'PORT_DESC', ports: [port(1), port(2), port(3)] } });
  t.is(mergeMultipartReplies([a]), a);
});

test('mergeMultipartReplies concatenates experimenter data of one experimenter type', (t) => {
  const part = (data: string, flags: number): MultipartReply => ({
    type: 'MULTIPART_REPLY', xid: 4, flags, body: { mpType: 'EXPERIMENTER', experimenter: 1, expType: 2, data: Buffer.from(data) },
  });
  const merged = mergeMultipartReplies([part('ab', 1), part('cd', 0)]);
  t.deepEqual(merged.body, { mpType: 'EXPERIMENTER', experimenter: 1, expType: 2, data: Buffer.from('abcd') });
});

test('mergeMultipartReplies refuses mixed types, mixed xids, split single bodies and no parts', (t) => {
  const ports: MultipartReply = { type: 'MULTIPART_REPLY', xid: 4, flags: 1, body: { mpType: 'PORT_DESC', ports: [] } };
  const tables: MultipartReply = { type: 'MULTIPART_REPLY', xid: 4, flags: 0, body: { mpType: 'TABLE', tables: [] } };
  const desc = replies[0]!;
  const cases: MultipartReply[][] = [
    [ports, tables],
    [ports, { ...ports, xid: 5 }],
    [
      { type: 'MULTIPART_REPLY', xid: 4, flags: 1, body: desc },
      { type: 'MULTIPART_REPLY', xid: 4, flags: 0, body: desc },
    ],
    [],
  ];
  for (const parts of cases) t.throws(() => mergeMultipartReplies(parts), { instanceOf: OfDecodeError });
});

test('a flow reply over 64 KiB splits into messages of at most 65535 bytes and merges back', (t) => {
  const flows = Array.from({ length: 1500 }, (_, i) => flow(i));
  const whole: MultipartReply = { type: 'MULTIPART_REPLY', xid: 77, flags: 0, body: { mpType: 'FLOW', flows } };
  t.throws(() => encodeMessage(whole), { instanceOf: OfEncodeError });
  const parts = splitMultipartReply(whole);
  t.true(parts.length >= 2);
  const wire = parts.map(encodeMessage);
  for (const bytes of wire) t.true(bytes.length <= OFP_MAX_MESSAGE_LEN);
  // full parts leave no room for one more entry
  t.true(wire[0]!.length > OFP_MAX_MESSAGE_LEN - 120);
  const decoded = wire.map((b) => decodeMessageOrThrow(b) as MultipartReply);
  t.deepEqual(decoded.map((p) => p.flags), [...parts.slice(1).map(() => OFPMPF_REPLY_MORE), 0]);
  t.deepEqual(mergeMultipartReplies(decoded), whole);
});

test('splitMultipartReply honours a small limit, keeps single bodies whole and refuses what cannot fit', (t) => {
  const ports: MultipartReply = { type: 'MULTIPART_REPLY', xid: 1, flags: 0, body: { mpType: 'PORT_DESC', ports: [1, 2, 3, 4, 5].map(port) } };
  const parts = splitMultipartReply(ports, 16 + 2 * 64);
  t.deepEqual(parts.map((p) => (p.body as { ports: Port[] }).ports.length), [2, 2, 1]);
  t.deepEqual(parts.map((p) => p.flags), [1, 1, 0]);
  t.deepEqual(splitMultipartReply({ ...ports, body: { mpType: 'PORT_DESC', ports: [] } }).length, 1);
  const desc: MultipartReply = { type: 'MULTIPART_REPLY', xid: 1, flags: 0, body: replies[0]! };
  t.deepEqual(splitMultipartReply(desc), [desc]);
  t.throws(() => splitMultipartReply(ports, 16 + 63), { instanceOf: OfEncodeError });
  t.throws(() => splitMultipartReply(ports, 70000), { instanceOf: OfEncodeError });
});

test('the ONF flow monitor request of vector 4-63 decodes from experimenter data and re-encodes exactly', (t) => {
  const msg = decodeMessageOrThrow(readFileSync(join(RYU_OF13_DIR, '4-63-onf_flow_monitor_request.packet')));
  if (msg.type !== 'MULTIPART_REQUEST' || msg.body.mpType !== 'EXPERIMENTER') return t.fail();
  const data = msg.body.data;
  const monitors = decodeOnfFlowMonitorRequests(data);
  t.deepEqual(monitors.map((m) => [m.id, m.flags, m.outPort, m.tableId, m.match.length]), [
    [100000000, 15, 22, 33, 0],
    [999, 49, 0xffffffff, 255, 42],
  ]);
  t.true(encodeOnfFlowMonitorRequests(monitors).equals(data));
  const err = t.throws(() => decodeOnfFlowMonitorRequests(data.subarray(0, 20)), { instanceOf: OfDecodeError });
  t.is(err?.kind, 'bad_length');
});

test('formatMultipart renders one ovs-ofctl-like line', (t) => {
  const reply = (body: MultipartReplyBody): MultipartReply => ({ type: 'MULTIPART_REPLY', xid: 2, flags: 0, body });
  const oneFlow: FlowStats = { ...flow(0), match: [], instructions: [{ type: 'goto_table', tableId: 1 }] };
  t.is(formatMultipart(reply({ mpType: 'FLOW', flows: [oneFlow] })), 'OFPST_FLOW reply (xid=0x2): 1 flow: cookie=0x123400000000 table=0 priority=100 actions=goto_table:1');
  t.is(formatMultipart(reply({ mpType: 'FLOW', flows: Array.from({ length: 9 }, (_, i) => flow(i)) })), 'OFPST_FLOW reply (xid=0x2): 9 flows');
  t.is(formatMultipart({ type: 'MULTIPART_REQUEST', xid: 3, flags: 0, body: { mpType: 'PORT_DESC' } }), 'OFPST_PORT_DESC request (xid=0x3)');
  t.is(
    formatMultipart({ type: 'MULTIPART_REQUEST', xid: 3, flags: 0, body: { mpType: 'PORT_STATS', portNo: OFPP.ANY } }),
    'OFPST_PORT request (xid=0x3): port=ANY',
  );
  t.is(
    formatMultipart({ ...reply(replies[2]!), flags: OFPMPF_REPLY_MORE }),
    'OFPST_AGGREGATE reply (xid=0x2): flags=[more] packet_count=7 byte_count=574 flow_count=6',
  );
  t.is(formatMultipart(reply(replies[10]!)), 'OFPST_METER_CONFIG reply (xid=0x2): 1 meter: meter=1 kbps,stats band=drop rate=1000 burst_size=10 ' +
    'band=dscp_remark rate=500 burst_size=0 prec_level=2 band=experimenter rate=1 burst_size=2 experimenter=0x2320 data_len=8');
  for (const body of replies) t.false(formatMultipart(reply(body)).includes('\n'));
});
