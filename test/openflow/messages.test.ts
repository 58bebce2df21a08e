import test from 'ava';
import {
  decodeMessage,
  encodeMessage,
  OfDecodeError,
  OfEncodeError,
  OFP_NO_BUFFER,
  OFPBAC,
  OFPBIC,
  OFPBMC,
  OFPBRC,
  OFPET,
  OFPG_ANY,
  OFPHFC,
  OFPP,
  OFPT,
  ONF_VENDOR_ID,
  type OfMessage,
} from '../../src/openflow';
import {
  bundleAdd,
  bundleControl,
  bundleErrorCode,
  decodeBundle,
  OFPBF_ATOMIC,
  OFPBF_ORDERED,
  OFPBFC,
  type BundleAdd,
  type BundleControl,
} from '../../src/openflow/messages/bundle';
import { errorReplyFor, helloFailed } from '../../src/openflow/messages/error-reply';
import type { FlowMod } from '../../src/openflow/messages/flow';
import { formatMessage } from '../../src/openflow/text/messages';

/** A raw OF1.3 message: header (length computed) plus body. */
function raw(type: number, xid: number, body: number[] | Buffer = []): Buffer {
  const b = Buffer.from(body);
  const h = Buffer.alloc(8);
  h.writeUInt8(4, 0);
  h.writeUInt8(type, 1);
  h.writeUInt16BE(8 + b.length, 2);
  h.writeUInt32BE(xid, 4);
  return Buffer.concat([h, b]);
}

function decodeOk(bytes: Buffer): OfMessage {
  const res = decodeMessage(bytes);
  if (!res.ok) throw res.error;
  return res.message;
}

function decodeErr(bytes: Buffer): OfDecodeError {
  const res = decodeMessage(bytes);
  if (res.ok) throw new Error(`expected a decode failure, got ${res.message.type}`);
  return res.error;
}

const port7 = {
  portNo: 7,
  hwAddr: 'f2:0b:a4:d0:3f:70',
  name: 'veth7',
  config: 0,
  state: 4,
  curr: 0x2808,
  advertised: 0x2800,
  supported: 0x2808,
  peer: 0x2808,
  currSpeed: 5000,
  maxSpeed: 5000,
};

const flowMod: FlowMod = {
  type: 'FLOW_MOD',
  xid: 5,
  cookie: 0xfedcba9876543210n,
  cookieMask: 0n,
  tableId: 3,
  command: 'delete_strict',
  idleTimeout: 10,
  hardTimeout: 20,
  priority: 100,
  bufferId: OFP_NO_BUFFER,
  outPort: OFPP.ANY,
  outGroup: OFPG_ANY,
  flags: 1,
  match: [{ field: 'in_port', value: 1 }],
  instructions: [],
};

/** One sample of every message type this family owns (match, actions and instructions kept empty or minimal). */
const samples: OfMessage[] = [
  { type: 'HELLO', xid: 1, elements: [{ type: 'versionbitmap', versions: [1, 4, 33] }, { type: 'unknown', elemType: 7, data: Buffer.from([1, 2, 3]) }] },
  { type: 'HELLO', xid: 2, elements: [] },
  { type: 'ERROR', xid: 3, errType: OFPET.BAD_REQUEST, code: OFPBRC.BAD_TYPE, data: Buffer.from('abc') },
  { type: 'ERROR', xid: 4, errType: OFPET.EXPERIMENTER, code: 2309, experimenter: ONF_VENDOR_ID, data: Buffer.alloc(0) },
  { type: 'ECHO_REQUEST', xid: 5, data: Buffer.from('ping') },
  { type: 'ECHO_REPLY', xid: 6, data: Buffer.alloc(0) },
  { type: 'EXPERIMENTER', xid: 7, experimenter: 0x2320, expType: 17, data: Buffer.from([9, 9]) },
  { type: 'FEATURES_REQUEST', xid: 8 },
  { type: 'FEATURES_REPLY', xid: 9, datapathId: 0xffffffffffffffffn, nBuffers: 256, nTables: 254, auxiliaryId: 1, capabilities: 0x4f, reserved: 0 },
  { type: 'GET_CONFIG_REQUEST', xid: 10 },
  { type: 'GET_CONFIG_REPLY', xid: 11, flags: 0, missSendLen: 0xffff },
  { type: 'SET_CONFIG', xid: 12, flags: 1, missSendLen: 128 },
  {
    type: 'PACKET_IN', xid: 13, bufferId: OFP_NO_BUFFER, totalLen: 4, reason: 1, tableId: 2, cookie: 1n,
    match: [{ field: 'in_port', value: 6 }], data: Buffer.from('hoge'),
  },
  {
    type: 'FLOW_REMOVED', xid: 14, cookie: 2n, priority: 65535, reason: 0, tableId: 0, durationSec: 3, durationNsec: 48825000,
    idleTimeout: 3, hardTimeout: 0, packetCount: 1n, byteCount: 86n, match: [],
  },
  { type: 'PORT_STATUS', xid: 15, reason: 2, desc: port7 },
  { type: 'PACKET_OUT', xid: 16, bufferId: OFP_NO_BUFFER, inPort: OFPP.CONTROLLER, actions: [], data: Buffer.from([1, 2, 3]) },
  flowMod,
  { type: 'PORT_MOD', xid: 17, portNo: 1, hwAddr: 'aa:bb:cc:99:88:77', config: 1, mask: 1, advertise: 0x2808 },
  { type: 'TABLE_MOD', xid: 18, tableId: 255, config: 3 },
  { type: 'BARRIER_REQUEST', xid: 19 },
  { type: 'BARRIER_REPLY', xid: 20 },
  { type: 'ROLE_REQUEST', xid: 21, role: 2, generationId: 0xf000f000f000f000n },
  { type: 'ROLE_REPLY', xid: 22, role: 3, generationId: 1n },
  { type: 'GET_ASYNC_REQUEST', xid: 23 },
  { type: 'GET_ASYNC_REPLY', xid: 24, packetInMask: [5, 1], portStatusMask: [7, 3], flowRemovedMask: [15, 3] },
  { type: 'SET_ASYNC', xid: 25, packetInMask: [0xffffffff, 0], portStatusMask: [0, 0], flowRemovedMask: [1, 2] },
];

for (const msg of samples) {
  test(`${msg.type} xid=${msg.xid} round-trips`, (t) => {
    const bytes = encodeMessage(msg);
    t.is(bytes.readUInt16BE(2), bytes.length, 'header length is computed');
    t.deepEqual(decodeOk(bytes), msg);
  });
}

// ---- wire layouts checked by hand ----

test('HELLO: version bitmap words and 8-byte element padding', (t) => {
  const bytes = encodeMessage({ type: 'HELLO', xid: 0, elements: [{ type: 'versionbitmap', versions: [1, 4, 33] }] });
  // element: type 1, len 12 (4 + two words), then 4 pad bytes
  t.deepEqual(bytes.subarray(8), Buffer.from('0001000c' + '00000012' + '00000002' + '00000000', 'hex'));
});

test('ERROR experimenter form: exp_type then experimenter id, as in vector 4-41', (t) => {
  const bytes = encodeMessage({ type: 'ERROR', xid: 0, errType: 0xffff, code: 60000, experimenter: 999999, data: Buffer.from('jikken data') });
  t.is(bytes.length, 27);
  t.deepEqual(bytes.subarray(8, 16), Buffer.from('ffffea60000f423f', 'hex'));
});

test('FLOW_MOD command maps to OFPFC codes', (t) => {
  const codes = (['add', 'modify', 'modify_strict', 'delete', 'delete_strict'] as const).map(
    (command) => encodeMessage({ ...flowMod, command })[8 + 17],
  );
  t.deepEqual(codes, [0, 1, 2, 3, 4]);
});

test('PACKET_OUT actions_len is computed', (t) => {
  const bytes = encodeMessage(samples.find((m) => m.type === 'PACKET_OUT')!);
  t.is(bytes.readUInt16BE(16), 0);
  t.is(bytes.length, 8 + 16 + 3);
});

// ---- decode failures: typed, with offset, message type and xid ----

test('a fixed-size body of the wrong size is a bad_length at the body start', (t) => {
  const err = decodeErr(raw(OFPT.FEATURES_REPLY, 0x42, Buffer.alloc(20)));
  t.is(err.kind, 'bad_length');
  t.deepEqual(err.context, { offset: 8, msgType: OFPT.FEATURES_REPLY, xid: 0x42 });
  t.is(decodeErr(raw(OFPT.ROLE_REQUEST, 1, Buffer.alloc(17))).kind, 'bad_length');
  t.is(decodeErr(raw(OFPT.BARRIER_REQUEST, 1, [0])).kind, 'bad_length');
  t.is(decodeErr(raw(OFPT.SET_ASYNC, 1, Buffer.alloc(8))).kind, 'bad_length');
});

test('ERROR bodies shorter than their header are bad_length', (t) => {
  t.is(decodeErr(raw(OFPT.ERROR, 1, [0, 1])).kind, 'bad_length');
  const err = decodeErr(raw(OFPT.ERROR, 1, [0xff, 0xff, 0, 1, 0, 0]));
  t.is(err.kind, 'bad_length');
  t.is(err.context.offset, 12);
});

test('HELLO element problems point at the element', (t) => {
  const short = decodeErr(raw(OFPT.HELLO, 9, [0, 1, 0, 2, 0, 0, 0, 0]));
  t.is(short.kind, 'bad_length');
  t.deepEqual(short.context, { offset: 8, msgType: OFPT.HELLO, xid: 9 });
  // a bitmap element of length 6 holds half a word
  t.is(decodeErr(raw(OFPT.HELLO, 9, [0, 1, 0, 6, 0, 0, 0, 0])).kind, 'bad_length');
  // the element's padding is missing
  t.is(decodeErr(raw(OFPT.HELLO, 9, [0, 7, 0, 5, 1])).kind, 'truncated');
});

test('FLOW_MOD with an unknown command is a bad_value at the command byte', (t) => {
  const bytes = encodeMessage(flowMod);
  bytes[8 + 17] = 9;
  const err = decodeErr(bytes);
  t.is(err.kind, 'bad_value');
  t.deepEqual(err.context, { offset: 25, msgType: OFPT.FLOW_MOD, xid: 5 });
});

test('FLOW_MOD and PACKET_IN too short for their fixed part and match are bad_length', (t) => {
  t.is(decodeErr(raw(OFPT.FLOW_MOD, 1, Buffer.alloc(40))).kind, 'bad_length');
  t.is(decodeErr(raw(OFPT.PACKET_IN, 1, Buffer.alloc(20))).kind, 'bad_length');
  t.is(decodeErr(raw(OFPT.FLOW_REMOVED, 1, Buffer.alloc(40))).kind, 'bad_length');
  t.is(decodeErr(raw(OFPT.PORT_STATUS, 1, Buffer.alloc(71))).kind, 'bad_length');
});

test('PACKET_OUT whose actions_len overruns the message is bad_length', (t) => {
  const body = Buffer.alloc(16);
  body.writeUInt16BE(64, 8);
  const err = decodeErr(raw(OFPT.PACKET_OUT, 3, body));
  t.is(err.kind, 'bad_length');
  t.is(err.context.xid, 3);
  t.is(err.context.offset, 24);
});

// ---- encode failures ----

test('encoding refuses inconsistent or out-of-range values with OfEncodeError', (t) => {
  t.throws(() => encodeMessage({ type: 'ERROR', xid: 1, errType: OFPET.EXPERIMENTER, code: 1, data: Buffer.alloc(0) }), { instanceOf: OfEncodeError });
  t.throws(() => encodeMessage({ type: 'ERROR', xid: 1, errType: 1, code: 1, experimenter: 5, data: Buffer.alloc(0) }), { instanceOf: OfEncodeError });
  t.throws(() => encodeMessage({ type: 'HELLO', xid: 1, elements: [{ type: 'versionbitmap', versions: [] }] }), { instanceOf: OfEncodeError });
  t.throws(() => encodeMessage({ ...flowMod, command: 'drop' as never }), { instanceOf: OfEncodeError });
  t.throws(() => encodeMessage({ type: 'PORT_MOD', xid: 1, portNo: 1, hwAddr: 'nope', config: 0, mask: 0, advertise: 0 }), {
    instanceOf: OfEncodeError,
  });
});

// ---- error replies ----

test('errorReplyFor maps each failure to its OFPET/code, keeps the xid and at most 64 bytes', (t) => {
  const cases: [Buffer, OFPET, number][] = [
    [Buffer.from('0100000800000007', 'hex'), OFPET.BAD_REQUEST, OFPBRC.BAD_VERSION],
    [raw(99, 7), OFPET.BAD_REQUEST, OFPBRC.BAD_TYPE],
    [raw(OFPT.FEATURES_REPLY, 7, Buffer.alloc(100)), OFPET.BAD_REQUEST, OFPBRC.BAD_LEN],
  ];
  for (const [bytes, errType, code] of cases) {
    const reply = errorReplyFor(decodeErr(bytes), bytes);
    t.is(reply.errType, errType);
    t.is(reply.code, code);
    t.is(reply.xid, 7);
    t.deepEqual(reply.data, bytes.subarray(0, 64));
  }
  const badCommand = encodeMessage(flowMod);
  badCommand[25] = 9;
  const reply = errorReplyFor(decodeErr(badCommand), badCommand);
  t.deepEqual([reply.errType, reply.code], [OFPET.FLOW_MOD_FAILED, 6]);
});

test('errorReplyFor: structure errors inside matches, actions and instructions', (t) => {
  const offending = raw(OFPT.FLOW_MOD, 11, Buffer.alloc(48));
  const at = (kind: OfDecodeError['kind'], msgType: number, offset = 60) =>
    errorReplyFor(new OfDecodeError(kind, 'x', { msgType, offset, xid: 11 }), offending);
  t.like(at('bad_oxm', OFPT.FLOW_MOD), { errType: OFPET.BAD_MATCH, code: OFPBMC.BAD_LEN, xid: 11 });
  t.like(at('bad_action', OFPT.FLOW_MOD), { errType: OFPET.BAD_ACTION, code: OFPBAC.BAD_TYPE });
  t.like(at('bad_instruction', OFPT.FLOW_MOD), { errType: OFPET.BAD_INSTRUCTION, code: OFPBIC.UNKNOWN_INST });
  t.like(at('unknown_type', OFPT.MULTIPART_REQUEST, 8), { errType: OFPET.BAD_REQUEST, code: OFPBRC.BAD_MULTIPART });
  t.like(at('unknown_type', OFPT.EXPERIMENTER, 8), { errType: OFPET.BAD_REQUEST, code: OFPBRC.BAD_EXPERIMENTER });
  t.like(at('truncated', OFPT.FLOW_MOD), { errType: OFPET.BAD_REQUEST, code: OFPBRC.BAD_LEN });
  t.is(at('bad_oxm', OFPT.FLOW_MOD).data.length, 56);
});

test('errorReplyFor takes the xid from the bytes when the error lacks it', (t) => {
  const bytes = raw(OFPT.HELLO, 0xabcdef);
  const reply = errorReplyFor(new OfDecodeError('bad_length', 'x'), bytes);
  t.is(reply.xid, 0xabcdef);
  t.is(errorReplyFor(new OfDecodeError('truncated', 'x'), Buffer.from([4, 0])).xid, 0);
});

test('helloFailed carries the reason as ASCII text and encodes', (t) => {
  const msg = helloFailed(3, 'only OpenFlow 1.3 is supported');
  t.like(msg, { errType: OFPET.HELLO_FAILED, code: OFPHFC.INCOMPATIBLE, xid: 3 });
  t.is(msg.data.toString('ascii'), 'only OpenFlow 1.3 is supported');
  t.deepEqual(decodeOk(encodeMessage(msg)), msg);
});

// ---- bundles ----

test('bundle control: ONF experimenter 2300 wire layout and round trip', (t) => {
  const msg = bundleControl(0x10, 0xabcd, 'commit_request', OFPBF_ATOMIC | OFPBF_ORDERED);
  const bytes = encodeMessage(msg);
  t.deepEqual(bytes, Buffer.from('04040018' + '00000010' + '4f4e4600' + '000008fc' + '0000abcd' + '0004' + '0003', 'hex'));
  const back = decodeOk(bytes);
  if (back.type !== 'EXPERIMENTER') return t.fail();
  t.deepEqual(decodeBundle(back), {
    kind: 'control', xid: 0x10, bundleId: 0xabcd, ctlType: 'commit_request', flags: 3, properties: Buffer.alloc(0),
  } satisfies BundleControl);
});

test('bundle add: inner message carries the bundle xid and round-trips', (t) => {
  const msg = bundleAdd(77, 1, OFPBF_ATOMIC, { ...flowMod, xid: 5 });
  t.is(msg.expType, 2301);
  const bytes = encodeMessage(msg);
  t.deepEqual(bytes.subarray(16, 24), Buffer.from('0000000100000001', 'hex'));
  t.is(bytes.readUInt32BE(24 + 4), 77, 'inner xid is the bundle xid');
  const back = decodeOk(bytes);
  if (back.type !== 'EXPERIMENTER') return t.fail();
  t.deepEqual(decodeBundle(back), {
    kind: 'add', xid: 77, bundleId: 1, flags: OFPBF_ATOMIC, message: { ...flowMod, xid: 77 }, properties: Buffer.alloc(0),
  } satisfies BundleAdd);
});

test('bundle add refuses messages OVS cannot bundle', (t) => {
  t.throws(() => bundleAdd(1, 1, 0, { type: 'BARRIER_REQUEST', xid: 1 }), { instanceOf: OfEncodeError });
});

test('decodeBundle returns typed errors with offsets in the EXPERIMENTER message', (t) => {
  const notBundle = decodeBundle({ type: 'EXPERIMENTER', xid: 2, experimenter: 0x2320, expType: 2300, data: Buffer.alloc(8) });
  t.true(notBundle instanceof OfDecodeError);
  t.like(notBundle, { kind: 'unknown_type', context: { msgType: OFPT.EXPERIMENTER, xid: 2, offset: 8 } });

  const short = decodeBundle({ type: 'EXPERIMENTER', xid: 2, experimenter: ONF_VENDOR_ID, expType: 2300, data: Buffer.alloc(6) });
  t.like(short, { kind: 'bad_length', context: { offset: 16 } });

  const badType = bundleControl(2, 1, 'open_request', 0);
  badType.data.writeUInt16BE(99, 4);
  t.like(decodeBundle(badType), { kind: 'bad_value', context: { offset: 20 } });

  const wrongXid = bundleAdd(2, 1, 0, flowMod);
  wrongXid.xid = 3;
  t.like(decodeBundle(wrongXid), { kind: 'bad_value', context: { offset: 28 } });

  const badInner = bundleAdd(2, 1, 0, flowMod);
  badInner.data[8 + 8 + 17] = 9; // the inner flow_mod's command
  t.like(decodeBundle(badInner), { kind: 'bad_value', context: { offset: 24 + 25, xid: 2 } });

  const noInner = decodeBundle({ ...bundleAdd(2, 1, 0, flowMod), data: Buffer.alloc(12) });
  t.like(noInner, { kind: 'bad_length', context: { offset: 24 } });
});

test('bundleErrorCode reads OVS bundle failures (ONF experimenter errors)', (t) => {
  const err = (code: number, experimenter = ONF_VENDOR_ID) => ({
    type: 'ERROR' as const, xid: 1, errType: OFPET.EXPERIMENTER, code, experimenter, data: Buffer.alloc(0),
  });
  t.is(bundleErrorCode(err(2302)), OFPBFC.BAD_ID);
  t.is(bundleErrorCode(err(2313)), OFPBFC.MSG_FAILED);
  t.is(bundleErrorCode(err(2302, 0x2320)), undefined);
  t.is(bundleErrorCode(err(17)), undefined);
  t.is(bundleErrorCode({ type: 'ERROR', xid: 1, errType: OFPET.BAD_REQUEST, code: 2, data: Buffer.alloc(0) }), undefined);
});

// ---- text ----

test('formatMessage: flow_mod reads like ovs-ofctl', (t) => {
  const msg: FlowMod = {
    ...flowMod,
    command: 'add',
    cookie: 1n,
    idleTimeout: 0,
    hardTimeout: 0,
    flags: 0,
    match: [{ field: 'eth_type', value: 0x800 }, { field: 'ipv4_dst', value: '10.0.0.5' }],
    instructions: [{ type: 'apply_actions', actions: [{ type: 'output', port: 2, maxLen: 0 }] }],
  };
  t.is(formatMessage(msg), 'OFPT_FLOW_MOD xid=0x5 cookie=0x1 table=3 priority=100 ip,nw_dst=10.0.0.5 actions=output:2');
  t.is(
    formatMessage({ ...msg, command: 'delete_strict', flags: 1, outPort: 2, instructions: [] }),
    'OFPT_FLOW_MOD xid=0x5 command=delete_strict cookie=0x1 table=3 priority=100 out_port=2 send_flow_rem ip,nw_dst=10.0.0.5 actions=drop',
  );
});

test('formatMessage: handshake and switch messages', (t) => {
  t.is(formatMessage(samples[0]!), 'OFPT_HELLO xid=0x1 versions=1.0,1.3,0x21 element(type=7,len=3)');
  t.is(formatMessage({ type: 'BARRIER_REQUEST', xid: 0x1f }), 'OFPT_BARRIER_REQUEST xid=0x1f');
  t.is(
    formatMessage(errorReplyFor(decodeErr(raw(99, 7)), raw(99, 7))),
    'OFPT_ERROR xid=0x7 OFPBRC_BAD_TYPE offending=OFPT_99 offending_xid=0x7 data_len=8',
  );
  t.is(formatMessage(helloFailed(0, 'no common version')), 'OFPT_ERROR xid=0x0 OFPHFC_INCOMPATIBLE reason="no common version"');
  t.is(
    formatMessage(samples.find((m) => m.type === 'FEATURES_REPLY')!),
    'OFPT_FEATURES_REPLY xid=0x9 dpid=ffffffffffffffff n_tables=254 n_buffers=256 auxiliary_id=1 capabilities=0x4f',
  );
  t.is(formatMessage(samples.find((m) => m.type === 'SET_CONFIG')!), 'OFPT_SET_CONFIG xid=0xc frags=drop miss_send_len=128');
  t.is(
    formatMessage(samples.find((m) => m.type === 'PORT_STATUS')!),
    'OFPT_PORT_STATUS xid=0xf reason=modify port=7 name="veth7" addr=f2:0b:a4:d0:3f:70 config=none state=live curr=0x2808 speed=5000/5000kbps',
  );
  t.is(
    formatMessage(samples.find((m) => m.type === 'GET_ASYNC_REPLY')!),
    'OFPT_GET_ASYNC_REPLY xid=0x18 packet_in=0x5/0x1 port_status=0x7/0x3 flow_removed=0xf/0x3',
  );
  t.is(formatMessage(samples.find((m) => m.type === 'ROLE_REQUEST')!), 'OFPT_ROLE_REQUEST xid=0x15 role=master generation_id=17294086455919964160');
  t.is(
    formatMessage(samples.find((m) => m.type === 'FLOW_REMOVED')!),
    'OFPT_FLOW_REMOVED xid=0xe reason=idle cookie=0x2 table=0 priority=65535 duration=3.048825000s idle_timeout=3 hard_timeout=0 n_packets=1 n_bytes=86',
  );
  t.is(formatMessage(samples.find((m) => m.type === 'TABLE_MOD')!), 'OFPT_TABLE_MOD xid=0x12 table=all config=0x3');
});

test('formatMessage: bundles and bundle errors', (t) => {
  t.is(
    formatMessage(bundleControl(1, 2, 'open_request', OFPBF_ORDERED)),
    'OFPT_EXPERIMENTER xid=0x1 ONF_BUNDLE_CONTROL bundle_id=0x2 type=open_request flags=ordered',
  );
  t.is(
    formatMessage(bundleAdd(1, 2, 0, { type: 'PORT_MOD', xid: 0, portNo: 1, hwAddr: '00:00:00:00:00:01', config: 1, mask: 1, advertise: 0 })),
    'OFPT_EXPERIMENTER xid=0x1 ONF_BUNDLE_ADD bundle_id=0x2 flags=none message={OFPT_PORT_MOD xid=0x1 port=1 addr=00:00:00:00:00:01 config=0x1/0x1 advertise=0x0}',
  );
  t.is(
    formatMessage({ type: 'ERROR', xid: 1, errType: OFPET.EXPERIMENTER, code: 2313, experimenter: ONF_VENDOR_ID, data: Buffer.alloc(0) }),
    'OFPT_ERROR xid=0x1 OFPBFC_MSG_FAILED data_len=0',
  );
  t.is(
    formatMessage({ type: 'ERROR', xid: 1, errType: OFPET.FLOW_MOD_FAILED, code: 6, data: encodeMessage(flowMod) }),
    'OFPT_ERROR xid=0x1 type=FLOW_MOD_FAILED code=6 offending=OFPT_FLOW_MOD offending_xid=0x5 data_len=64',
  );
});

test('formatMessage prints every sample on one line', (t) => {
  for (const msg of samples) {
    const line = formatMessage(msg);
    t.true(line.startsWith(`OFPT_${msg.type} xid=`), line);
    t.false(line.includes('\n'), line);
  }
});
