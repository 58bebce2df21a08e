import test from 'ava';
import fc from 'fast-check';
import { OFPMPF_REPLY_MORE, OFPP, OfDecodeError, decodeWireFlowStats, encodeMessage, type Instruction, type Match, type WireFlowStats, fieldRef, fieldRefFromHeader, wireFlowStats } from '../../src/openflow';
import { makeCookie } from '../../src/sdk/cookie';
import { diffFlows, diffWireFlows, sameInstructions } from '../../src/sdk/diff';
import type { Flow } from '../../src/sdk/flow';

/** the NXM headers OVS (3.1) uses when it reports a move of ipv6_src or ipv6_dst: NXM_NX_IPV6_SRC/DST, 16 bytes */
const NXM_NX_IPV6_SRC = 0x00012610;
const NXM_NX_IPV6_DST = 0x00012810;

const swapToDst = (src: ReturnType<typeof fieldRef>, dst: ReturnType<typeof fieldRef>): Instruction[] => [
  { type: 'apply_actions', actions: [{ type: 'reg_move', src, dst, nBits: 128, srcOfs: 0, dstOfs: 0 }] },
];

// Seen on real OVS (overlay-ipv6.test.ts): the ND responder's and the router's ping6 flows stayed
// "to modify" for ever because the NXM headers of the IPv6 addresses had no name to compare by.
test('a move of the IPv6 addresses reported with NXM headers is the move we sent with OXM ones', (t) => {
  const desired = swapToDst(fieldRef('ipv6_src'), fieldRef('ipv6_dst'));
  const reported = swapToDst(fieldRefFromHeader(NXM_NX_IPV6_SRC), fieldRefFromHeader(NXM_NX_IPV6_DST));
  t.deepEqual(reported[0]!.type === 'apply_actions' && reported[0]!.actions[0], { type: 'reg_move', src: { name: 'nxm_nx_ipv6_src', header: NXM_NX_IPV6_SRC }, dst: { name: 'nxm_nx_ipv6_dst', header: NXM_NX_IPV6_DST }, nBits: 128, srcOfs: 0, dstOfs: 0 });
  t.true(sameInstructions(desired, reported));
  t.false(sameInstructions(desired, swapToDst(fieldRefFromHeader(NXM_NX_IPV6_DST), fieldRefFromHeader(NXM_NX_IPV6_SRC))), 'the direction still counts');
});

// ---- diffWireFlows: the full sync's diff against a flow dump read in place ----

const APP = 7;
const OWNED = new Set([APP]);
const NXM_OF_ETH_SRC = 0x00000406;
const NXM_OF_ETH_DST = 0x00000206;

function desiredFlow(owner: string, priority: number, match: Match, instructions: Instruction[], tableId = 0): Flow {
  return { tableId, table: `t${tableId}`, priority, match, instructions, cookie: makeCookie(APP, owner), idleTimeout: 0, hardTimeout: 0, flags: 0 };
}

/** What a switch would report holding `flows`, as the wire bytes of its FLOW reply (two messages, as a split reply comes). */
function dumped(flows: readonly Omit<Flow, 'table'>[]): WireFlowStats[] {
  const stats = flows.map(({ table: _t, ...f }: Omit<Flow, 'table'> & { table?: string }) => ({ ...f, durationSec: 3, durationNsec: 0, packetCount: 9n, byteCount: 900n }));
  const half = Math.ceil(stats.length / 2);
  const frame = (part: typeof stats, more: boolean): Buffer => encodeMessage({ type: 'MULTIPART_REPLY', xid: 9, flags: more ? OFPMPF_REPLY_MORE : 0, body: { mpType: 'FLOW', flows: part } });
  return wireFlowStats([frame(stats.slice(0, half), true), frame(stats.slice(half), false)]);
}

const arpMatch = (): Match => [
  { field: 'eth_type', value: 0x0806 },
  { field: 'arp_op', value: 1 },
];
const reflect = (src: number, dst: number): Instruction[] => [{ type: 'apply_actions', actions: [{ type: 'reg_move', src: fieldRefFromHeader(src), dst: fieldRefFromHeader(dst), nBits: 48, srcOfs: 0, dstOfs: 0 }, { type: 'output', port: OFPP.IN_PORT, maxLen: 0 }] }];
const toPort = (port: number): Instruction[] => [{ type: 'apply_actions', actions: [{ type: 'output', port, maxLen: 0 }] }];

test('a dump of exactly the desired flows is in sync with nothing decoded', (t) => {
  const desired = [desiredFlow('a', 10, [{ field: 'in_port', value: 1 }], toPort(2)), desiredFlow('b', 20, arpMatch(), reflect(0x80000806, 0x80000606), 1)];
  const diff = diffWireFlows(desired, dumped(desired), OWNED);
  t.deepEqual(diff, { deletes: [], modifies: [], adds: [], conflicts: [], decoded: 0 });
});

test('an entry the switch reports in its own form (match fields reordered, NXM field references) is decoded once, then found by its bytes', (t) => {
  const arp = desiredFlow('arp', 300, arpMatch(), reflect(0x80000806, 0x80000606));
  // as OVS reports such a flow: its own field order, the move's fields by their NXM headers
  const asReported = { ...arp, match: [...arp.match].reverse(), instructions: reflect(NXM_OF_ETH_SRC, NXM_OF_ETH_DST) };
  const first = diffWireFlows([arp], dumped([asReported]), OWNED);
  t.deepEqual(first, { deletes: [], modifies: [], adds: [], conflicts: [], decoded: 1 }, 'the same flow by meaning');
  const next = diffWireFlows([arp], dumped([asReported]), OWNED);
  t.is(next.decoded, 0, "the next switch's entry is compared as bytes");
  t.deepEqual(next.modifies, []);
  // bytes that differ in meaning are still found different
  const moved = diffWireFlows([arp], dumped([{ ...asReported, instructions: reflect(NXM_OF_ETH_DST, NXM_OF_ETH_SRC) }]), OWNED);
  t.is(moved.modifies.length, 1);
});

test('diffWireFlows sends what diffFlows sends for the same dump', (t) => {
  const kept = desiredFlow('kept', 10, [{ field: 'in_port', value: 1 }], toPort(2));
  const changed = desiredFlow('changed', 10, [{ field: 'in_port', value: 2 }], toPort(3));
  const recookied = desiredFlow('recookied', 10, [{ field: 'in_port', value: 3 }], toPort(1));
  const missing = desiredFlow('missing', 10, [{ field: 'in_port', value: 4 }], toPort(1));
  const sharedOwner = desiredFlow('shared', 10, [{ field: 'in_port', value: 5 }], toPort(1));
  const installed: Omit<Flow, 'table'>[] = [
    kept,
    { ...changed, instructions: toPort(9) },
    { ...recookied, cookie: makeCookie(APP, 'someone else') },
    { ...sharedOwner, match: [{ field: 'in_port', value: 6 }] }, // stale, its cookie still desired: deleted strictly
    desiredFlow('gone', 10, [{ field: 'in_port', value: 7 }], toPort(1)), // stale, its cookie no longer desired: deleted by cookie
    { ...desiredFlow('foreign', 10, [{ field: 'in_port', value: 8 }], toPort(1)), cookie: makeCookie(APP + 1, 'foreign') }, // not ours: left alone
  ];
  const desired = [kept, changed, recookied, missing, sharedOwner];
  const wire = dumped(installed);
  const { decoded, ...diff } = diffWireFlows(desired, wire, OWNED);
  t.deepEqual(diff, diffFlows(desired, wire.map(decodeWireFlowStats), OWNED));
  t.is(diff.modifies.length, 1);
  t.is(diff.adds.length, 3); // missing, the cookie change, and `sharedOwner` itself
  t.deepEqual(diff.deletes.map((d) => d.command).sort(), ['delete', 'delete_strict']);
  t.is(decoded, 4, 'only the entries that are not desired bytes: the changed instructions and the three stale or foreign flows');
});

test('a malformed dump is an OfDecodeError: its framing at once, an entry that must be decoded when it is', (t) => {
  const flow = desiredFlow('a', 10, [{ field: 'in_port', value: 1 }], toPort(2));
  const [frame] = dumped([flow]).map((e) => e.buf);
  const truncated = Buffer.from(frame!.subarray(0, frame!.length - 8));
  truncated.writeUInt16BE(truncated.length, 2);
  t.throws(() => wireFlowStats([truncated]), { instanceOf: OfDecodeError });
  // an instruction of length 4 (not a multiple of 8) in an entry the diff has to decode
  const bad = Buffer.from(frame!);
  const [entry] = wireFlowStats([bad]);
  bad.writeUInt16BE(4, entry!.instructionsStart + 2);
  const [badEntry] = wireFlowStats([bad]);
  t.throws(() => diffWireFlows([desiredFlow('a', 10, [{ field: 'in_port', value: 1 }], toPort(3))], [badEntry!], OWNED), { instanceOf: OfDecodeError });
});

test('a flow dump with any bytes changed gives a diff or an OfDecodeError, nothing else (fast-check)', (t) => {
  const desired = [desiredFlow('a', 10, [{ field: 'in_port', value: 1 }], toPort(2)), desiredFlow('arp', 300, arpMatch(), reflect(0x80000806, 0x80000606), 1)];
  const [frame] = dumped([...desired, desiredFlow('stale', 5, [{ field: 'in_port', value: 3 }], toPort(1))]).map((e) => e.buf);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(frame!.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
      const bytes = Buffer.from(frame!);
      for (const [at, value] of edits) bytes[at] = value;
      bytes.writeUInt16BE(bytes.length, 2); // the framer has checked the message length
      try {
        diffWireFlows(desired, wireFlowStats([bytes]), OWNED);
      } catch (e) {
        if (!(e instanceof OfDecodeError)) throw e;
      }
    }),
    { numRuns: 3000 },
  );
  t.pass();
});
