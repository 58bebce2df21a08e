import test, { type ExecutionContext } from 'ava';
import {
  decodeTlvTableReply,
  encodeMessage,
  formatActions,
  formatMatch,
  OFPG_ANY,
  OFPP,
  OFPTT_ALL,
  tlvTableMod,
  tlvTableRequest,
  type Action,
  type FlowStats,
  type MultipartRequest,
  type TlvMapping,
} from '../../src/openflow';
import { assertOvsRunning, dumpFlows, ofctl, OfTestClient, withBridge, type Received } from '../helpers/ovs';

/**
 * Flows in ovs-ofctl syntax, each with a unique cookie, chosen for the Nicira actions and
 * NXM matches a VPC overlay pipeline uses. ovs-ofctl encodes them (the independent encoder);
 * we only read them back.
 */
const FLOWS = [
  'table=0,priority=100,cookie=0x1,in_port=1,actions=move:NXM_NX_REG1[]->NXM_NX_REG2[],load:0x3->NXM_NX_REG3[0..7],resubmit(,10)',
  // the ARP responder of docs/design-notes: moves and loads on ARP fields, then back out of the in_port
  'table=0,priority=90,cookie=0x2,reg0=0x5,arp,arp_op=1,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:02:00:00:00:00:01,load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],output:in_port',
  'table=0,priority=80,cookie=0x3,reg5=0x10/0xf0,actions=resubmit(,20),resubmit(2,30)',
  'table=10,priority=70,cookie=0x4,ip,actions=ct(commit,zone=5,nat(src=10.0.0.1-10.0.0.9:1000-2000)),resubmit(,11)',
  'table=10,priority=60,cookie=0x5,ct_state=+trk+est-new,ip,actions=ct_clear,goto_table:11',
  'table=10,priority=50,cookie=0x6,tcp,nw_src=10.1.0.0/16,tp_dst=80,actions=conjunction(7,1/2)',
  'table=10,priority=50,cookie=0x7,tcp,nw_dst=10.2.0.5,actions=conjunction(7,2/2)',
  'table=10,priority=55,cookie=0x8,conj_id=7,tcp,actions=dec_ttl,output:2',
  'table=11,priority=40,cookie=0x9,tun_id=0x1234,actions=controller(reason=no_match,max_len=128,id=5)',
  'table=11,priority=41,cookie=0xa,tun_id=0x20/0xf0,actions=controller(userdata=01.02.03,pause)',
  'table=11,priority=30,cookie=0xb,pkt_mark=0x7,actions=note:de.ad.be.ef.00.01.02,output:3',
  'table=11,priority=31,cookie=0xc,pkt_mark=0x40/0xf0,actions=learn(table=20,hard_timeout=60,priority=99,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:NXM_NX_REG0[0..15]->NXM_NX_REG1[0..15],output:NXM_OF_IN_PORT[]),resubmit(,20)',
  // tun_dst set_field needs no tunnel port to be accepted; it takes effect only on one with remote_ip=flow
  'table=12,priority=20,cookie=0xd,actions=set_field:0x1234->reg3,set_field:0x55->tun_id,set_field:192.168.1.7->tun_dst,output:4',
  'table=12,priority=21,cookie=0xe,ip,nw_dst=10.9.0.1,actions=ct(commit,zone=NXM_NX_REG6[0..15],exec(set_field:0x1->ct_mark),table=13)',
  'table=12,priority=22,cookie=0xf,ip,actions=ct(table=13,zone=3,nat)',
  'table=13,priority=10,cookie=0x10,ct_state=+new+trk,ip,actions=ct(commit,nat(dst=10.3.0.1:8080))',
  'table=13,priority=11,cookie=0x11,reg1=0x9,reg2=0xa,ip,actions=dec_ttl(1,2,3),output:in_port',
  'table=13,priority=12,cookie=0x12,tun_src=172.16.1.1,tun_dst=172.16.1.2,actions=output:NXM_NX_REG0[0..15]',
  'table=14,priority=1,cookie=0x13,ct_mark=0x5/0xff,ct_zone=3,actions=push:NXM_NX_REG0[],pop:NXM_NX_REG1[],exit',
  'table=14,priority=2,cookie=0x14,arp,arp_tpa=10.0.0.1,actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:5',
  'table=14,priority=3,cookie=0x15,dl_vlan=10,actions=pop_vlan,write_metadata:0x5/0xff,goto_table:15',
  'table=15,priority=4,cookie=0x16,metadata=0x5/0xff,actions=clear_actions,write_actions(output:6)',
  'table=15,priority=5,cookie=0x17,ipv6,ipv6_src=2001:db8::/32,actions=sample(probability=100,collector_set_id=1,obs_domain_id=2,obs_point_id=3),output:controller',
  'table=15,priority=6,cookie=0x18,udp,tp_src=53,actions=set_field:8.8.8.8->ip_dst,mod_tp_dst:5353,output:in_port',
  'table=16,priority=7,cookie=0x19,reg7=0xffffffff,actions=multipath(eth_src,50,modulo_n,1,0,NXM_NX_REG0[0..1]),resubmit(,17)',
  // the ND responder's NA built in place from an NS: the SLL option rewritten and retyped as TLL, flags in nd_reserved (ERICOXM_OF class)
  'table=16,priority=8,cookie=0x1a,icmp6,icmp_type=135,nd_target=2001:db8::5,actions=move:NXM_NX_IPV6_SRC[]->NXM_NX_IPV6_DST[],set_field:2001:db8::5->ipv6_src,set_field:00:11:22:33:44:55->nd_sll,set_field:2->nd_options_type,set_field:0x60000000->nd_reserved,set_field:136->icmpv6_type,output:in_port',
];

test.before(assertOvsRunning);

function flowStatsRequest(xid: number): MultipartRequest {
  return {
    type: 'MULTIPART_REQUEST',
    xid,
    flags: 0,
    body: { mpType: 'FLOW', tableId: OFPTT_ALL, outPort: OFPP.ANY, outGroup: OFPG_ANY, cookie: 0n, cookieMask: 0n, match: [] },
  };
}

const OFP_MULTIPART_HEADER_END = 16;
const FLOW_STATS_COOKIE_AT = 24;

/** The cookie of the ofp_flow_stats entry holding byte `at` of a FLOW reply, to name the culprit flow. */
function cookieAt(reply: Buffer, at: number): bigint | undefined {
  for (let entry = OFP_MULTIPART_HEADER_END; entry + 2 <= reply.length; ) {
    const len = reply.readUInt16BE(entry);
    if (len === 0) return undefined;
    if (at < entry + len) return reply.readBigUInt64BE(entry + FLOW_STATS_COOKIE_AT);
    entry += len;
  }
  return undefined;
}

function firstDiff(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

/**
 * Asserts every reply decodes and re-encodes to exactly OVS's bytes; returns the flows.
 * `describe` names the flow (by cookie) where a re-encoding first differs.
 */
function checkFlowReplies(t: ExecutionContext, replies: Received[], describe: (cookie: bigint) => string): FlowStats[] {
  const flows: FlowStats[] = [];
  for (const [i, { bytes, decoded }] of replies.entries()) {
    if (!decoded.ok) {
      const cookie = cookieAt(bytes, decoded.error.context.offset ?? 0);
      t.fail(`reply ${i}: ${decoded.error.toString()}${cookie === undefined ? '' : ` (in ${describe(cookie)})`}`);
      continue;
    }
    const msg = decoded.message;
    if (msg.type !== 'MULTIPART_REPLY' || msg.body.mpType !== 'FLOW') {
      t.fail(`reply ${i} is ${msg.type}${msg.type === 'ERROR' ? ` type=${msg.errType} code=${msg.code}` : ''}, not a FLOW multipart reply`);
      continue;
    }
    flows.push(...msg.body.flows);
    const again = encodeMessage(msg);
    if (!again.equals(bytes)) {
      const at = firstDiff(again, bytes);
      const cookie = cookieAt(bytes, at);
      t.fail(
        `reply ${i} re-encodes differently from byte ${at} (ours ${again.length} bytes, OVS ${bytes.length})` +
          (cookie === undefined ? '' : `, in ${describe(cookie)}`),
      );
    }
  }
  return flows;
}

/** NXAST_MULTIPATH: our codec does not model it, so it round-trips as raw bytes (nx_unknown). */
const NXAST_MULTIPATH = 10;

/** Subtypes of the Nicira actions our decoder kept raw, nested ones (ct, clone) included. */
function rawNiciraSubtypes(flows: readonly FlowStats[]): number[] {
  const walk = (actions: readonly Action[]): number[] =>
    actions.flatMap((a) => (a.type === 'nx_unknown' ? [a.subtype] : 'actions' in a ? walk(a.actions) : []));
  return flows.flatMap((f) => f.instructions.flatMap((i) => ('actions' in i ? walk(i.actions) : [])));
}

const key = (f: { table: number; priority: number; cookie: bigint }) => `table=${f.table} priority=${f.priority} cookie=0x${f.cookie.toString(16)}`;

test('flows with Nicira actions that ovs-ofctl installed come back over the mgmt socket, decode, and re-encode byte for byte', async (t) => {
  await withBridge('zmtest-rt', {}, async (bridge) => {
    for (const flow of FLOWS) await ofctl(['add-flow', bridge, flow]);
    const byCookie = new Map(FLOWS.map((f) => [BigInt(/cookie=(0x[0-9a-f]+)/.exec(f)![1]!), f]));
    const describe = (cookie: bigint) => `flow cookie=0x${cookie.toString(16)}: ${byCookie.get(cookie) ?? '(unknown cookie)'}`;

    const client = await OfTestClient.connectToBridge(bridge);
    try {
      const replies = await client.request(flowStatsRequest(client.xid()));
      const flows = checkFlowReplies(t, replies, describe);
      t.is(flows.length, FLOWS.length, 'flow count');
      t.deepEqual(rawNiciraSubtypes(flows), [NXAST_MULTIPATH], 'every Nicira action but multipath decodes into a modelled action');
      const dumped = await dumpFlows(bridge);
      t.is(dumped.length, FLOWS.length, 'ovs-ofctl dump-flows count');
      const ours = flows.map((f) => key({ table: f.tableId, priority: f.priority, cookie: f.cookie })).sort();
      t.deepEqual(ours, dumped.map(key).sort(), 'table, priority and cookie of every flow agree with ovs-ofctl dump-flows');
    } finally {
      client.close();
    }
  });
});

test('a flow dump too large for one message arrives as a multipart sequence that decodes and re-encodes byte for byte', async (t) => {
  const count = 3000; // about 100 bytes each: several 64 KiB replies
  const lines = Array.from(
    { length: count },
    (_, i) => `table=${i % 8},priority=${1000 + i},cookie=${0x10000 + i},tcp,nw_dst=10.${(i >> 8) & 255}.${i & 255}.1,tp_dst=${1 + i},actions=load:${i}->NXM_NX_REG0[],resubmit(,9)`,
  );
  await withBridge('zmtest-big', {}, async (bridge) => {
    await ofctl(['add-flows', '--bundle', bridge, '-'], { input: lines.join('\n') });
    const client = await OfTestClient.connectToBridge(bridge);
    try {
      const replies = await client.request(flowStatsRequest(client.xid()), 30_000);
      t.true(replies.length > 1, `expected several replies, got ${replies.length}`);
      const flows = checkFlowReplies(t, replies, (c) => `flow cookie=0x${c.toString(16)}`);
      t.is(flows.length, count);
      t.deepEqual(
        flows.map((f) => f.cookie).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
        lines.map((_, i) => BigInt(0x10000 + i)),
      );
    } finally {
      client.close();
    }
  });
});

/** the overlay's Geneve option (src/model/derived.ts): class 0xffff, type 0x80, 4 bytes, as tun_metadata0 */
const OPTION: TlvMapping = { optionClass: 0xffff, optionType: 0x80, optionLength: 4, index: 0 };

async function tlvTable(client: OfTestClient) {
  const [reply] = await client.request(tlvTableRequest(client.xid()));
  if (!reply!.decoded.ok || reply!.decoded.message.type !== 'EXPERIMENTER') throw new Error(`TLV table request answered by ${reply!.bytes.toString('hex')}`);
  assertReencodes(reply!.bytes, reply!.decoded.message);
  const table = decodeTlvTableReply(reply!.decoded.message);
  if (table instanceof Error) throw table;
  return table;
}

function assertReencodes(bytes: Buffer, msg: Parameters<typeof encodeMessage>[0]): void {
  if (!encodeMessage(msg).equals(bytes)) throw new Error(`re-encodes differently: ${bytes.toString('hex')}`);
}

test('tun_metadata0: our TLV table mod maps the Geneve option, flows match and set it both ways (ovs-ofctl and our codec), byte for byte', async (t) => {
  await withBridge('zmtest-tlv', {}, async (bridge) => {
    const client = await OfTestClient.connectToBridge(bridge);
    try {
      t.deepEqual((await tlvTable(client)).mappings, [], 'a new bridge maps no option');
      client.send(tlvTableMod(client.xid(), 'add', [OPTION]));
      const again = tlvTableMod(client.xid(), 'add', [OPTION]);
      const [refusal] = await client.request(again);
      t.true(refusal!.decoded.ok && refusal!.decoded.message.type === 'ERROR', 'adding a mapped index again is refused (so the app asks first)');
      const table = await tlvTable(client);
      t.deepEqual(table.mappings, [OPTION]);
      t.true(table.maxFields >= 64 && table.maxOptionSpace >= 124, `OVS limits: ${table.maxFields} fields, ${table.maxOptionSpace} bytes`);
      t.regex(await ofctl(['dump-tlv-map', bridge]), /0xffff\s+0x80\s+4\s+tun_metadata0/, 'ovs-ofctl sees our mapping');

      // ovs-ofctl encodes, we decode and re-encode
      await ofctl(['add-flow', bridge, 'table=1,priority=9,cookie=0x21,tun_id=0x11170,tun_metadata0=0x1388,actions=set_field:0x7fffffff->tun_metadata0,output:1']);
      await ofctl(['add-flow', bridge, 'table=1,priority=8,cookie=0x22,tun_metadata0=0x10/0xf0,actions=output:2']);
      // OVS writes set_field values in their fewest bytes (0x1388 in 2): they decode by name and re-encode exactly
      await ofctl(['add-flow', bridge, 'table=1,priority=7,cookie=0x24,actions=set_field:0x1388->tun_metadata0,set_field:0x1->tun_metadata0,set_field:0->tun_metadata0,output:2']);
      const flows = checkFlowReplies(t, await client.request(flowStatsRequest(client.xid())), (c) => `cookie 0x${c.toString(16)}`);
      const byCookie = new Map(flows.map((f) => [f.cookie, f]));
      t.deepEqual(byCookie.get(0x21n)!.match, [
        { field: 'tunnel_id', value: 0x11170n },
        { field: 'tun_metadata0', value: 0x1388 },
      ]);
      t.is(formatMatch(byCookie.get(0x21n)!.match), 'tun_id=0x11170,tun_metadata0=0x1388');
      t.is(formatActions((byCookie.get(0x21n)!.instructions[0] as { actions: Action[] }).actions), 'set_field:0x7fffffff->tun_metadata0,output:1');
      t.deepEqual(byCookie.get(0x22n)!.match, [{ field: 'tun_metadata0', value: 0x10, mask: 0xf0 }]);
      t.deepEqual(
        (byCookie.get(0x24n)!.instructions[0] as { actions: Action[] }).actions.slice(0, 3),
        [0x1388, 1, 0].map((value) => ({ type: 'set_field', field: { field: 'tun_metadata0', value } })),
      );

      // we encode, ovs-ofctl reads
      client.send({
        type: 'FLOW_MOD', xid: client.xid(), cookie: 0x23n, cookieMask: 0n, tableId: 2, command: 'add', idleTimeout: 0, hardTimeout: 0, priority: 7,
        bufferId: 0xffffffff, outPort: OFPP.ANY, outGroup: OFPG_ANY, flags: 0,
        match: [{ field: 'tunnel_id', value: 16_777_215n }, { field: 'tun_metadata0', value: 0xfffffffe }],
        instructions: [{ type: 'apply_actions', actions: [{ type: 'set_field', field: { field: 'tun_metadata0', value: 5000 } }, { type: 'output', port: 3, maxLen: 0 }] }],
      });
      const dumped = (await ofctl(['dump-flows', bridge, 'table=2'])).trim();
      t.regex(dumped, /tun_id=0xffffff,tun_metadata0=0xfffffffe actions=set_field:0x1388->tun_metadata0,output:3/);
    } finally {
      client.close();
    }
  });
});
