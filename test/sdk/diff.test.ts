import test from 'ava';
import { type Instruction, fieldRef, fieldRefFromHeader } from '../../src/openflow';
import { sameInstructions } from '../../src/sdk/diff';

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
