import test, { type ExecutionContext } from 'ava';
import {
  allFieldSpecs,
  decodeMessage,
  encodeMessage,
  encodeOxm,
  flowModCommandCode,
  OFP_NO_BUFFER,
  OFPAT,
  OFPG_ANY,
  OFPIT,
  OFPMP,
  OFPP,
  OFPT,
  OFPXMC_OPENFLOW_BASIC,
  OFPVID_PRESENT,
  parseIpv4,
  parseIpv6,
  parseMac,
  Writer,
  type Action,
  type FlowMod,
  type FlowModCommand,
  type Instruction,
  type NamedOxm,
  type OfMessage,
  type OxmTlv,
  type StandardAction,
} from '../../src/openflow';
import { fieldValues, nodesWith, problems, tsharkDissect, type TsharkFrame, type TsharkNode } from '../helpers/tshark';
import { loadVectors } from './ryu/vectors';

// Wireshark (tshark 4.0) as an independent decoder of the bytes our encoder writes.
// It does not decode Nicira actions or NXM fields ("Undecoded" notes), so for those only
// the framing around them is checked.

/**
 * Ryu vectors whose payloads are synthetic on purpose, so Wireshark reports them Malformed
 * whoever encodes them. Their header fields are still checked.
 */
const SYNTHETIC: Record<string, string> = {
  '4-15-ofp_error_msg': "the error data is the text 'fugafuga', which Wireshark dissects as the offending OpenFlow message",
  'libofproto-OFP13-error_msg': 'the error data is a bare 8-byte FLOW_MOD header, which Wireshark dissects as a whole flow_mod',
  '4-45-ofp_meter_mod': 'Wireshark reads past the end of an experimenter meter band that has no body after the experimenter id',
  '4-62-ofp_experimenter_reply': 'Wireshark 4.0 throws on the opaque body of an experimenter multipart reply',
  'libofproto-OFP13-packet_in': "the packet-in data is the 4-byte text 'hoge', too short for the Ethernet frame Wireshark expects",
};

function ofLayer(frame: TsharkFrame): TsharkNode | undefined {
  // A frame shows several openflow_v4 layers when a message embeds another (error data): the first is ours.
  return Array.isArray(frame.openflow) ? frame.openflow[0] : frame.openflow;
}

function str(node: TsharkNode | undefined, key: string): string | undefined {
  const v = node?.[key];
  const first = Array.isArray(v) ? v[0] : v;
  return typeof first === 'string' ? first : undefined;
}

/** The OF layer, after checking Wireshark saw an OpenFlow 1.3 message with our type, xid and length. */
function checkHeader(t: ExecutionContext, frame: TsharkFrame, msg: OfMessage, bytes: Buffer): TsharkNode | undefined {
  const of = ofLayer(frame);
  if (!of) {
    t.fail(`Wireshark did not dissect the bytes as OpenFlow 1.3 (protocols: ${frame.protocols})`);
    return undefined;
  }
  t.is(str(of, 'openflow_v4.version'), '0x04', 'version');
  t.is(Number(str(of, 'openflow_v4.type')), OFPT[msg.type], 'message type');
  t.is(Number(str(of, 'openflow_v4.xid')), msg.xid, 'xid');
  t.is(Number(str(of, 'openflow_v4.length')), bytes.length, 'length');
  return of;
}

/** An OXM TLV as it sits on the wire. */
interface WireOxm {
  oxmClass: number;
  oxmField: number;
  hasMask: boolean;
  length: number;
  value?: string;
  mask?: string;
}

/** Ours, from our own encoding of the one TLV. */
function ourOxm(tlv: OxmTlv): WireOxm {
  const w = new Writer(64);
  encodeOxm(w, tlv);
  const b = w.finish();
  const header = b.readUInt32BE(0);
  const length = header & 0xff;
  const hasMask = (header & 0x100) !== 0;
  const body = b.subarray(4, 4 + length);
  const n = hasMask ? length / 2 : length;
  return {
    oxmClass: header >>> 16,
    oxmField: (header >>> 9) & 0x7f,
    hasMask,
    length,
    value: body.subarray(0, n).toString('hex'),
    ...(hasMask && { mask: body.subarray(n).toString('hex') }),
  };
}

/** Wireshark's display of a value back to wire bytes; the key's suffix tells the display format. */
function displayToHex(key: string, text: string, bytes: number): string {
  if (key === 'value' || key === 'mask') return text.replace(/:/g, '');
  if (key === 'value_etheraddr' || key === 'ether_mask') return parseMac(text).toString('hex');
  if (key === 'value_ipv4addr' || key === 'ipv4_mask') return parseIpv4(text).toString('hex');
  if (key === 'value_ipv6addr' || key === 'ipv6_mask') return parseIpv6(text).toString('hex');
  return BigInt(text).toString(16).padStart(bytes * 2, '0');
}

/** Wireshark's, from its dissection. value/mask stay undefined where Wireshark leaves them undecoded. */
function wiresharkOxm(node: TsharkNode): WireOxm {
  const length = Number(str(node, 'openflow_v4.oxm.length'));
  const hasMask = str(node, 'openflow_v4.oxm.hm') === '1';
  const n = hasMask ? length / 2 : length;
  const out: WireOxm = {
    oxmClass: Number(str(node, 'openflow_v4.oxm.class')),
    oxmField: Number(str(node, 'openflow_v4.oxm.field')),
    hasMask,
    length,
  };
  for (const [k, v] of Object.entries(node)) {
    const key = k.replace(/^openflow_v4\.oxm\./, '');
    if (typeof v !== 'string' || key.startsWith('value_vlan')) continue;
    if (key.startsWith('value')) out.value = displayToHex(key, v, n);
    else if (key.endsWith('mask')) out.mask = displayToHex(key, v, n);
  }
  // vlan_vid is shown as two subfields: the OFPVID_PRESENT bit and the VLAN id
  const vid = str(node, 'openflow_v4.oxm.value_vlan_vid');
  if (vid !== undefined) {
    const present = str(node, 'openflow_v4.oxm.value_vlan_present') === '1' ? OFPVID_PRESENT : 0;
    out.value = (present | Number(vid)).toString(16).padStart(4, '0');
  }
  return out;
}

function checkOxms(t: ExecutionContext, wireshark: TsharkNode[], ours: readonly OxmTlv[], what: string): void {
  t.is(wireshark.length, ours.length, `${what}: number of OXM TLVs`);
  ours.forEach((tlv, i) => {
    const node = wireshark[i];
    if (!node) return;
    const a = ourOxm(tlv);
    const b = wiresharkOxm(node);
    const label = `${what} TLV ${i} (${tlv.field})`;
    t.deepEqual([b.oxmClass, b.oxmField, b.hasMask, b.length], [a.oxmClass, a.oxmField, a.hasMask, a.length], `${label}: class, field, hasmask, length`);
    if (a.oxmClass !== OFPXMC_OPENFLOW_BASIC) return; // Wireshark leaves NXM and experimenter bodies undecoded
    t.is(b.value, a.value, `${label}: value`);
    // Wireshark 4.0 leaves the masks of some fields (transport ports) undecoded
    if (b.mask !== undefined) t.is(b.mask, a.mask ?? '(none)', `${label}: mask`);
  });
}

/** The OXM nodes of the message's own match (not of set_field actions). */
function matchOxms(of: TsharkNode): TsharkNode[] {
  return nodesWith(of['Match'], 'openflow_v4.oxm.class');
}

const actionCode = (a: Action): number => (OFPAT as unknown as Record<string, number>)[a.type.toUpperCase()] ?? OFPAT.EXPERIMENTER;
const instructionCode = (i: Instruction): number => OFPIT[i.type.toUpperCase() as keyof typeof OFPIT];
const listActions = (insts: readonly Instruction[]): Action[] =>
  insts.flatMap((i) => (i.type === 'apply_actions' || i.type === 'write_actions' ? i.actions : []));
const outputPorts = (actions: readonly Action[]): string[] => actions.flatMap((a) => (a.type === 'output' ? [String(a.port)] : []));

/** Action and instruction types in wire order, output ports, and each standard set_field TLV. */
function checkActions(t: ExecutionContext, of: TsharkNode, actions: readonly Action[], instructions?: readonly Instruction[]): void {
  if (instructions) {
    t.deepEqual(fieldValues(of, 'openflow_v4.instruction.type').map(Number), instructions.map(instructionCode), 'instruction types');
  }
  t.deepEqual(fieldValues(of, 'openflow_v4.action.type').map(Number), actions.map(actionCode), 'action types');
  t.deepEqual(fieldValues(of, 'openflow_v4.action.output.port'), outputPorts(actions), 'output ports');
  const setFields = actions.flatMap((a) => (a.type === 'set_field' ? [a.field] : []));
  checkOxms(t, nodesWith(of['Instruction'] ?? of['Action'], 'openflow_v4.oxm.class'), setFields, 'set_field');
}

function checkFlowMod(t: ExecutionContext, of: TsharkNode, fm: FlowMod): void {
  t.is(BigInt(str(of, 'openflow_v4.flowmod.cookie') ?? -1), fm.cookie, 'cookie');
  t.is(Number(str(of, 'openflow_v4.flowmod.table_id')), fm.tableId, 'table_id');
  t.is(Number(str(of, 'openflow_v4.flowmod.priority')), fm.priority, 'priority');
  t.is(Number(str(of, 'openflow_v4.flowmod.command')), flowModCommandCode(fm.command), 'command');
  checkOxms(t, matchOxms(of), fm.match, 'match');
  checkActions(t, of, listActions(fm.instructions), fm.instructions);
}

/** What this file checks beyond the header, per message type. */
function checkBody(t: ExecutionContext, of: TsharkNode, msg: OfMessage): void {
  switch (msg.type) {
    case 'FLOW_MOD':
      return checkFlowMod(t, of, msg);
    case 'PACKET_IN':
    case 'FLOW_REMOVED':
      return checkOxms(t, matchOxms(of), msg.match, 'match');
    case 'PACKET_OUT':
      return checkActions(t, of, msg.actions);
    case 'MULTIPART_REQUEST':
      t.is(Number(str(of, 'openflow_v4.multipart_request.type')), OFPMP[msg.body.mpType], 'multipart type');
      return;
    case 'MULTIPART_REPLY':
      t.is(Number(str(of, 'openflow_v4.multipart_reply.type')), OFPMP[msg.body.mpType], 'multipart type');
      return;
    default:
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Every Ryu vector, decoded by our codec and re-encoded under a fresh xid

interface Encoded {
  name: string;
  message?: OfMessage;
  bytes?: Buffer;
  error?: string;
}

const XID_BASE = 0x7a000000;

const ryu: Encoded[] = loadVectors().map((v, i) => {
  const res = decodeMessage(v.bytes);
  if (!res.ok) return { name: v.name, error: `our decoder: ${res.error.toString()}` };
  const message = { ...res.message, xid: XID_BASE + i } as OfMessage;
  try {
    return { name: v.name, message, bytes: encodeMessage(message) };
  } catch (e) {
    return { name: v.name, error: `our encoder: ${(e as Error).message}` };
  }
});

/** Dissects every encodable message of `list` in one tshark run; frames by name. */
async function dissectAll(list: readonly Encoded[]): Promise<Map<string, TsharkFrame>> {
  const ok = list.filter((e) => e.bytes);
  const frames = await tsharkDissect(ok.map((e) => e.bytes!));
  return new Map(ok.map((e, i) => [e.name, frames[i]!]));
}

let ryuFrames: Promise<Map<string, TsharkFrame>> | undefined;

function checkWithWireshark(t: ExecutionContext, e: Encoded, frame: TsharkFrame | undefined, synthetic = false): void {
  if (e.error !== undefined || !e.message || !e.bytes) return void t.fail(e.error);
  if (!frame) return void t.fail('no tshark frame');
  const of = checkHeader(t, frame, e.message, e.bytes);
  if (!synthetic) t.deepEqual(problems(frame), [], 'Wireshark expert warnings or errors');
  if (of) checkBody(t, of, e.message);
}

for (const e of ryu) {
  const how = e.name in SYNTHETIC ? '(Malformed: synthetic payload)' : 'without complaint';
  test(`tshark dissects our re-encoding of Ryu vector ${e.name} ${how}, with the same key fields`, async (t) => {
    ryuFrames ??= dissectAll(ryu);
    checkWithWireshark(t, e, (await ryuFrames).get(e.name), e.name in SYNTHETIC);
  });
}

// ---------------------------------------------------------------------------------------------
// 2. Hand-built flow_mods: every OF1.3 match field, every action, every instruction

/** Every OpenFlow 1.3 OXM field (class 0x8000), masked where the field is maskable. */
const EVERY_FIELD: NamedOxm[] = [
  { field: 'in_port', value: 7 },
  { field: 'in_phy_port', value: 3 },
  { field: 'metadata', value: 0x1234_5678_0000_0000n, mask: 0xffff_ffff_0000_0000n },
  { field: 'eth_dst', value: 'aa:bb:cc:00:00:00', mask: 'ff:ff:ff:00:00:00' },
  { field: 'eth_src', value: '02:00:00:00:00:10', mask: 'ff:ff:ff:ff:ff:f0' },
  { field: 'eth_type', value: 0x0800 },
  { field: 'vlan_vid', value: OFPVID_PRESENT | 0x120, mask: 0x1ff0 },
  { field: 'vlan_pcp', value: 5 },
  { field: 'ip_dscp', value: 46 },
  { field: 'ip_ecn', value: 2 },
  { field: 'ip_proto', value: 6 },
  { field: 'ipv4_src', value: '10.1.0.0', mask: '255.255.0.0' },
  { field: 'ipv4_dst', value: '192.168.7.0', mask: '255.255.255.128' },
  { field: 'tcp_src', value: 0x1000, mask: 0xf000 },
  { field: 'tcp_dst', value: 443, mask: 0xffff },
  { field: 'udp_src', value: 0x3500, mask: 0xff00 },
  { field: 'udp_dst', value: 4789, mask: 0xffff },
  { field: 'sctp_src', value: 0x0040, mask: 0xffc0 },
  { field: 'sctp_dst', value: 9899, mask: 0xffff },
  { field: 'icmpv4_type', value: 8 },
  { field: 'icmpv4_code', value: 1 },
  { field: 'arp_op', value: 2 },
  { field: 'arp_spa', value: '10.0.0.0', mask: '255.0.0.0' },
  { field: 'arp_tpa', value: '10.0.0.1', mask: '255.255.255.255' },
  { field: 'arp_sha', value: '02:00:00:00:01:00', mask: 'ff:ff:ff:ff:ff:00' },
  { field: 'arp_tha', value: '00:00:00:00:00:00', mask: '01:00:00:00:00:00' },
  { field: 'ipv6_src', value: '2001:db8::', mask: 'ffff:ffff::' },
  { field: 'ipv6_dst', value: 'fe80::1:0', mask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:0' },
  { field: 'ipv6_flabel', value: 0x12340, mask: 0xffff0 },
  { field: 'icmpv6_type', value: 135 },
  { field: 'icmpv6_code', value: 0 },
  { field: 'ipv6_nd_target', value: '2001:db8:0:5::', mask: 'ffff:ffff:ffff:ffff::' },
  { field: 'ipv6_nd_sll', value: 'aa:bb:cc:dd:ee:ff', mask: 'ff:ff:ff:ff:ff:ff' },
  { field: 'ipv6_nd_tll', value: '02:00:00:00:00:00', mask: '02:00:00:00:00:00' },
  { field: 'mpls_label', value: 0x12345 },
  { field: 'mpls_tc', value: 3 },
  { field: 'mpls_bos', value: 1 },
  { field: 'pbb_isid', value: 0xabc000, mask: 0xfff000 },
  { field: 'tunnel_id', value: 0x5500n, mask: 0xff00n },
  { field: 'ipv6_exthdr', value: 0x0041, mask: 0x01c1 },
];

/** Every OF1.3 action; the mapped type makes the compiler insist on all of them. */
const EVERY_ACTION: { [K in StandardAction['type']]: Extract<StandardAction, { type: K }> } = {
  output: { type: 'output', port: 5, maxLen: 0 },
  copy_ttl_out: { type: 'copy_ttl_out' },
  copy_ttl_in: { type: 'copy_ttl_in' },
  set_mpls_ttl: { type: 'set_mpls_ttl', ttl: 63 },
  dec_mpls_ttl: { type: 'dec_mpls_ttl' },
  push_vlan: { type: 'push_vlan', ethertype: 0x88a8 },
  pop_vlan: { type: 'pop_vlan' },
  push_mpls: { type: 'push_mpls', ethertype: 0x8847 },
  pop_mpls: { type: 'pop_mpls', ethertype: 0x0800 },
  set_queue: { type: 'set_queue', queueId: 3 },
  group: { type: 'group', groupId: 12 },
  set_nw_ttl: { type: 'set_nw_ttl', ttl: 17 },
  dec_nw_ttl: { type: 'dec_nw_ttl' },
  set_field: { type: 'set_field', field: { field: 'ipv4_dst', value: '10.9.8.7' } },
  push_pbb: { type: 'push_pbb', ethertype: 0x88e7 },
  pop_pbb: { type: 'pop_pbb' },
  experimenter: { type: 'experimenter', experimenter: 0x00abcdef, data: Buffer.from('0102030405060708', 'hex') },
};

/** Every OF1.3 instruction, in the spec's execution order (OF1.3 §5.9). */
const EVERY_INSTRUCTION: { [K in Instruction['type']]: Extract<Instruction, { type: K }> } = {
  meter: { type: 'meter', meterId: 4 },
  apply_actions: { type: 'apply_actions', actions: Object.values(EVERY_ACTION) },
  clear_actions: { type: 'clear_actions' },
  write_actions: {
    type: 'write_actions',
    actions: [{ type: 'set_field', field: { field: 'eth_src', value: '02:00:00:00:00:99' } }, EVERY_ACTION.group, { type: 'output', port: OFPP.CONTROLLER, maxLen: 128 }],
  },
  write_metadata: { type: 'write_metadata', metadata: 0xaa00n, metadataMask: 0xff00n },
  goto_table: { type: 'goto_table', tableId: 9 },
  experimenter: { type: 'experimenter', experimenter: 0x00abcdef, data: Buffer.from('0a0b0c0d0e0f1011', 'hex') },
};

const COMMANDS: FlowModCommand[] = ['add', 'modify', 'modify_strict', 'delete', 'delete_strict'];

function flowMod(i: number, match: OxmTlv[], instructions: Instruction[]): FlowMod {
  return {
    type: 'FLOW_MOD',
    xid: XID_BASE + 0x10000 + i,
    cookie: 0x0123_4567_0000_0000n + BigInt(i),
    cookieMask: 0n,
    tableId: i % 254,
    command: COMMANDS[i % COMMANDS.length]!,
    idleTimeout: 10 + i,
    hardTimeout: 0,
    priority: 1000 + i,
    bufferId: OFP_NO_BUFFER,
    outPort: OFPP.ANY,
    outGroup: OFPG_ANY,
    flags: 0,
    match,
    instructions,
  };
}

const unmasked = (tlv: NamedOxm): NamedOxm => ({ field: tlv.field, value: tlv.value }) as NamedOxm;

const handBuilt: { name: string; fm: FlowMod }[] = [
  ...EVERY_FIELD.map((tlv, i) => ({
    name: `match on ${tlv.field}${tlv.mask === undefined ? '' : ' (masked)'}`,
    fm: flowMod(i, [tlv], [{ type: 'apply_actions', actions: [{ type: 'output', port: i + 1, maxLen: 0 }] }]),
  })),
  ...EVERY_FIELD.map((tlv, i) => ({
    name: `set_field ${tlv.field}`,
    fm: flowMod(100 + i, [], [{ type: 'apply_actions', actions: [{ type: 'set_field', field: unmasked(tlv) }, { type: 'output', port: OFPP.IN_PORT, maxLen: 0 }] }]),
  })),
  { name: 'all OF1.3 match fields at once', fm: flowMod(200, EVERY_FIELD, [{ type: 'goto_table', tableId: 250 }]) },
  { name: 'every OF1.3 action', fm: flowMod(201, [EVERY_FIELD[0]!], [EVERY_INSTRUCTION.apply_actions]) },
  { name: 'every OF1.3 instruction', fm: flowMod(202, [], Object.values(EVERY_INSTRUCTION)) },
];

test('the hand-built flow_mods use every OpenFlow 1.3 match field, with a mask wherever it is maskable', (t) => {
  const basic = allFieldSpecs().filter((s) => s.oxmClass === OFPXMC_OPENFLOW_BASIC);
  t.deepEqual(EVERY_FIELD.map((f) => f.field).sort(), basic.map((s) => s.name).sort());
  const maskable = new Map(basic.map((s) => [s.name, s.maskable]));
  t.deepEqual(EVERY_FIELD.filter((f) => (f.mask !== undefined) !== maskable.get(f.field)).map((f) => f.field), []);
});

const built: Encoded[] = handBuilt.map(({ name, fm }) => {
  try {
    return { name, message: fm, bytes: encodeMessage(fm) };
  } catch (e) {
    return { name, error: `our encoder: ${(e as Error).message}` };
  }
});
let builtFrames: Promise<Map<string, TsharkFrame>> | undefined;

for (const e of built) {
  test(`tshark dissects a hand-built flow_mod with ${e.name} without complaint, with the same key fields`, async (t) => {
    builtFrames ??= dissectAll(built);
    checkWithWireshark(t, e, (await builtFrames).get(e.name));
  });
}
