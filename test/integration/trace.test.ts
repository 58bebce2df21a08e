/**
 * `zonemesh trace` against `ovs-appctl ofproto/trace` on the real bridges of the multi-zone
 * scenario (models/two-zones.yaml plus a deny rule inside blue's web tier, so that every kind of
 * ACL decision occurs). One scenario and one controller for every case: each case runs the CLI
 * with --json, then asks each hypervisor's own ovs-vswitchd (its unixctl socket) to trace the very
 * packet of each hop, and compares the tables and priorities hit, the ports output to, and drop
 * or not. Each case also states the verdict the model calls for.
 */
import test from 'ava';
import { copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMap, isSeq, parseDocument } from 'yaml';
import { tracerOf } from '../../src/cli/trace';
import type { TraceHop, TraceProto, TraceQuery, TraceResult, Tracer } from '../../src/cli/tracer';
import { queryControl } from '../../src/runtime';
import { LIVE_DSCP } from '../../src/cli/trace-live';
import { TUNNEL_OFPORT } from '../../src/model';
import { runCliAsync } from '../cli/run-cli';
import { TWO_ZONES_MODEL, innerLayer, overlayUp, waitFor, type OverlayScenario, type OverlayState, type RunningController, startController } from '../helpers/overlay';
import { TEST_STATE_DIR, run } from '../helpers/run';

interface Case {
  args: string[];
  /** the verdict the model calls for: 'delivered VM', 'answered', 'dropped REASON[ RULE]' */
  want: string;
}

const c = (want: string, ...args: string[]): Case => ({ args, want });

const CASES: Case[] = [
  // allowed, by each allow rule and within tiers
  c('delivered app2', '--from', 'web1', '--to', '10.1.2.12:8080'),
  c('delivered app1', '--from', 'web1', '--to', '10.1.2.11'),
  c('delivered db1', '--from', 'app1', '--to', '10.1.3.11:5432'),
  c('delivered db1', '--from', 'app2', '--to', '10.1.3.11'),
  c('delivered web2', '--from', 'web1', '--to', '10.1.1.12'),
  c('delivered web2', '--from', 'web1', '--to', '10.1.1.12:80'),
  c('delivered web1', '--from', 'web2', '--to', '10.1.1.11:53', '--proto', 'udp'),
  c('delivered app2', '--from', 'app1', '--to', '10.1.2.12:9999'),
  c('delivered app2', '--from', 'db1', '--to', '10.1.2.12', '--ct', 'established'),
  c('delivered web1', '--from', 'app2', '--to', '10.1.1.11:40000', '--ct', 'established'),
  // denied: by the deny rule, and by default between tiers
  c('dropped acl_rule web-no-telnet', '--from', 'web1', '--to', '10.1.1.12:23'),
  c('dropped acl_rule web-no-telnet', '--from', 'web2', '--to', '10.1.1.11:23'),
  c('dropped acl_default_deny', '--from', 'web1', '--to', '10.1.3.11:5432'),
  c('dropped acl_default_deny', '--from', 'web2', '--to', '10.1.3.11'),
  c('dropped acl_default_deny', '--from', 'app1', '--to', '10.1.1.11'),
  c('dropped acl_default_deny', '--from', 'db1', '--to', '10.1.2.11:8080'),
  c('dropped acl_default_deny', '--from', 'web1', '--to', '10.1.2.12:22'),
  c('dropped acl_default_deny', '--from', 'db1', '--to', '10.1.2.12'),
  // VPCs with the same addresses stay apart
  c('delivered red2', '--from', 'red1', '--to', '10.1.1.12'),
  c('delivered red1', '--from', 'red2', '--to', '10.1.1.11:80'),
  c('dropped no_route', '--from', 'red1', '--to', '10.1.2.12'),
  c('dropped unknown_arp', '--from', 'red1', '--to', '10.1.1.13'),
  // TTL
  c('dropped ttl_expired', '--from', 'app1', '--to', '10.1.3.11', '--ttl', '1'),
  c('dropped ttl_expired', '--from', 'web1', '--to', '10.1.2.12:8080', '--ttl', '1'),
  c('delivered app2', '--from', 'web1', '--to', '10.1.2.12:8080', '--ttl', '2'),
  c('delivered web2', '--from', 'web1', '--to', '10.1.1.12', '--ttl', '1'),
  // unknown addresses
  c('dropped unknown_arp', '--from', 'web1', '--to', '10.1.1.99'),
  c('dropped no_route', '--from', 'web1', '--to', '10.1.9.9'),
  c('dropped no_route', '--from', 'web1', '--to', '10.1.2.99'),
  c('dropped no_route', '--from', 'app2', '--to', '8.8.8.8:53', '--proto', 'udp'),
  // ARP
  c('answered', '--from', 'web1', '--to', '10.1.1.12', '--proto', 'arp'),
  c('answered', '--from', 'web1', '--to', '10.1.1.1', '--proto', 'arp'),
  c('dropped unknown_arp', '--from', 'web1', '--to', '10.1.1.99', '--proto', 'arp'),
  c('dropped dropped_by_flow', '--from', 'web1', '--to', '10.1.1.11', '--proto', 'arp'),
  c('answered', '--from', 'red2', '--to', '10.1.1.11', '--proto', 'arp'),
  // the router
  c('answered', '--from', 'web1', '--to', '10.1.1.1'),
  c('answered', '--from', 'app1', '--to', '10.1.2.1'),
  c('dropped no_route', '--from', 'web1', '--to', '10.1.2.1'),
  c('dropped no_route', '--from', 'web1', '--to', '10.1.1.1:80'),
];

/** SimPacket field → ovs-ofctl flow syntax */
const OVS_FIELD: Record<string, string> = {
  eth_src: 'dl_src',
  eth_dst: 'dl_dst',
  eth_type: 'dl_type',
  ipv4_src: 'nw_src',
  ipv4_dst: 'nw_dst',
  nw_ttl: 'nw_ttl',
  ip_proto: 'nw_proto',
  tcp_src: 'tcp_src',
  tcp_dst: 'tcp_dst',
  udp_src: 'udp_src',
  udp_dst: 'udp_dst',
  icmpv4_type: 'icmp_type',
  icmpv4_code: 'icmp_code',
  arp_op: 'arp_op',
  arp_spa: 'arp_spa',
  arp_tpa: 'arp_tpa',
  arp_sha: 'arp_sha',
  arp_tha: 'arp_tha',
  tunnel_id: 'tun_id',
  tun_metadata0: 'tun_metadata0',
  tun_ipv4_src: 'tun_src',
  tun_ipv4_dst: 'tun_dst',
};

function ovsFlow(hop: TraceHop, inPort: string): string {
  const parts = [`in_port=${inPort}`];
  for (const [k, v] of Object.entries(hop.packet)) {
    const name = OVS_FIELD[k];
    if (!name) throw new Error(`no ovs-ofctl name for packet field ${k}`);
    parts.push(`${name}=${k === 'eth_type' || k === 'tun_metadata0' ? `0x${Number(v).toString(16)}` : v}`);
  }
  return parts.join(',');
}

interface OvsTrace {
  /** 'table/priority' of each flow hit on br-int, recirculations included */
  steps: string[];
  /** OpenFlow ports output to on br-int ('in_port' for IN_PORT) */
  outputs: string[];
  dropped: boolean;
}

/** The br-int part of an ofproto/trace: the flows hit, the outputs, and whether the datapath drops it. */
function parseOvsTrace(text: string): OvsTrace {
  const steps: string[] = [];
  const outputs: string[] = [];
  let bridge = '';
  for (const line of text.split('\n')) {
    const b = /^bridge\("([^"]+)"\)/.exec(line);
    if (b) bridge = b[1]!;
    if (bridge !== 'br-int') continue;
    const step = /^ {1,2}(\d+)\. (?:.*, )?priority (\d+)(?:, cookie 0x[0-9a-f]+)?$/.exec(line);
    if (step) steps.push(`${step[1]}/${step[2]}`);
    const out = /^\s+output:(\d+)$/.exec(line);
    if (out) outputs.push(out[1]!);
    if (/^\s+IN_PORT$/.test(line)) outputs.push('in_port');
  }
  const actions = /^Datapath actions: (.*)$/m.exec(text)?.[1];
  if (actions === undefined) throw new Error(`no datapath actions in:\n${text}`);
  // a ct() with table= ends the first pass in a recirculation; the second pass says what happens
  const last = [...text.matchAll(/^Datapath actions: (.*)$/gm)].at(-1)![1]!;
  return { steps, outputs, dropped: last === 'drop' || /^ct\([^)]*\)$/.test(last) };
}

/** Where the tracer says each hop's packet left, as ofproto/trace names it. */
function ourOutputs(r: TraceResult, hop: TraceHop, next: TraceHop | undefined): string[] {
  const outs = r.verdict.deliveries.filter((d) => d.hypervisor === hop.hypervisor).map((d) => (d.reply ? 'in_port' : String(d.port)));
  return next && next.inPort === TUNNEL_OFPORT ? [...outs, String(TUNNEL_OFPORT)] : outs;
}

function summary(r: TraceResult): string {
  const v = r.verdict;
  if (v.result === 'delivered') return `delivered ${v.deliveries.filter((d) => !d.reply).map((d) => d.vm).join(',')}`;
  if (v.result === 'dropped') return `dropped ${v.drops.map((d) => `${d.reason}${d.rule ? ` ${d.rule}` : ''}`).join(',')}`;
  return v.result;
}

interface Ctx {
  scenario: OverlayScenario;
  state: OverlayState;
  controller: RunningController;
}

let ctx: Ctx | undefined;
const dir = join(TEST_STATE_DIR, 'trace');

test.before(async () => {
  mkdirSync(dir, { recursive: true });
  const modelFile = join(dir, 'model.yaml');
  copyFileSync(TWO_ZONES_MODEL, modelFile);
  addDenyRule(modelFile);
  const scenario = await overlayUp(modelFile, { stateDir: join(dir, 'net'), prefix: 'zmtr' });
  try {
    const controller = await startController(modelFile, scenario.hypervisorsJson);
    ctx = { scenario, state: scenario.state(), controller };
  } catch (e) {
    await scenario.down();
    throw e;
  }
});

test.after.always(async () => {
  try {
    await ctx?.controller.stop();
  } finally {
    await ctx?.scenario.down();
  }
});

/** blue's web tier denies telnet among its own VMs (rules come before the same-tier allow) */
function addDenyRule(modelFile: string): void {
  const doc = parseDocument(readFileSync(modelFile, 'utf8'));
  const vpcs = doc.get('vpcs');
  const blue = isSeq(vpcs) ? vpcs.items.find((v) => isMap(v) && v.get('name') === 'blue') : undefined;
  const acls = isMap(blue) ? blue.get('acls') : undefined;
  if (!isSeq(acls)) throw new Error('no acls in blue');
  acls.add(doc.createNode({ name: 'web-no-telnet', subnet: 'web', direction: 'ingress', action: 'deny', protocol: 'tcp', ports: 23, remote: { subnet: 'web' } }));
  writeFileSync(`${modelFile}.tmp`, doc.toString());
  renameSync(`${modelFile}.tmp`, modelFile);
}

const control = () => `unix:${ctx!.controller.controlSocket}`;

async function ofprotoTrace(hop: TraceHop, inPort: string, ct: string): Promise<OvsTrace> {
  const unixctl = ctx!.state.hypervisors[hop.hypervisor]!.unixctl;
  const args = ['-t', unixctl, 'ofproto/trace', 'br-int', ovsFlow(hop, inPort), ...(ct === 'established' ? ['--ct-next', 'trk,est'] : [])];
  return parseOvsTrace((await run('ovs-appctl', args)).stdout);
}

/** What `zonemesh trace ARGS --json` prints, computed in this process: node's start-up costs a second a case on a busy machine. */
function traceInProcess(tracer: Tracer, args: readonly string[]): TraceResult {
  const opt = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i < 0 ? undefined : args[i + 1];
  };
  const [ip, port] = opt('to')!.split(':');
  const proto = (opt('proto') ?? (port === undefined ? 'icmp' : 'tcp')) as TraceProto;
  const query: TraceQuery = { from: opt('from')!, to: ip!, proto, ...(port !== undefined && { port: Number(port) }), ct: (opt('ct') ?? 'new') as TraceQuery['ct'], ttl: Number(opt('ttl') ?? 64) };
  return JSON.parse(JSON.stringify(tracer.trace(query))) as TraceResult;
}

test.serial(`${CASES.length} traces agree with ofproto/trace on the real bridges, and with the model`, async (t) => {
  t.true(CASES.length >= 30);
  const installed = await queryControl(ctx!.controller.controlSocket, { op: 'installed' });
  if (!installed.ok) return t.fail(installed.error);
  const tracer = tracerOf(installed);
  // the command prints the same, for an allowed and a denied case
  for (const k of [CASES[0]!, CASES[10]!]) {
    const r = await runCliAsync('trace', ...k.args, '--json', '--control', control());
    t.is(r.status, 0, r.stderr);
    t.deepEqual(JSON.parse(r.stdout), traceInProcess(tracer, k.args), k.args.join(' '));
  }
  const problems: string[] = [];
  let hops = 0;
  for (const k of CASES) {
    const label = k.args.join(' ');
    const result = traceInProcess(tracer, k.args);
    if (summary(result) !== k.want) problems.push(`${label}: ${summary(result)}, the model says ${k.want}`);
    for (const [i, hop] of result.hops.entries()) {
      hops++;
      const vm = ctx!.state.vms[result.query.from]!;
      const ovs = await ofprotoTrace(hop, i === 0 ? vm.interface : String(hop.inPort), result.query.ct);
      const ours = { steps: hop.steps.map((s) => `${s.table}/${s.priority}`), outputs: ourOutputs(result, hop, result.hops[i + 1]) };
      if (ours.steps.join(' ') !== ovs.steps.join(' ')) problems.push(`${label} @${hop.hypervisor}: tables ${ours.steps.join(' ')}, ofproto/trace ${ovs.steps.join(' ')}`);
      if (ours.outputs.sort().join() !== ovs.outputs.sort().join()) problems.push(`${label} @${hop.hypervisor}: outputs [${ours.outputs}], ofproto/trace [${ovs.outputs}]`);
      if ((ours.outputs.length === 0) !== ovs.dropped) problems.push(`${label} @${hop.hypervisor}: dropped ${ours.outputs.length === 0}, ofproto/trace ${ovs.dropped}`);
    }
  }
  t.deepEqual(problems, []);
  t.log(`${CASES.length} cases, ${hops} switch hops compared with ofproto/trace`);
});

test.serial('--live: a real packet marked DSCP 43 goes through every traced flow; a denied one never enters a tunnel', async (t) => {
  const capture = await ctx!.scenario.startCapture('trace-live');
  const allowed = await runCliAsync('trace', '--from', 'web1', '--to', '10.1.2.12:8080', '--live', '--json', '--control', control());
  const denied = await runCliAsync('trace', '--from', 'web1', '--to', '10.1.3.11:5432', '--live', '--json', '--control', control());
  await capture.stop();
  for (const [r, hops] of [[allowed, 2], [denied, 1]] as const) {
    t.is(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout) as TraceResult;
    t.is(result.hops.length, hops);
    t.true(result.live?.allSeen, JSON.stringify(result.hops.map((h) => h.steps.map((s) => `${h.hypervisor}:${s.tableName}=${s.live}`))));
    t.true(result.hops.every((h) => h.steps.every((s) => s.live !== undefined && s.live >= 1)));
  }
  // On the underlay: the allowed SYN from hv1 to hv4, and app2's answer (Linux sends its RST with the
  // SYN's DSCP), so the VM got it; nothing marked for db1, whose SYN the ACL dropped at the source.
  const marked = capture.tunnelFrames().filter((f) => innerLayer(f, 'ipv4')?.dscp === LIVE_DSCP);
  const [hv1, hv4] = [ctx!.state.hypervisors.hv1!.tunnelIp, ctx!.state.hypervisors.hv4!.tunnelIp];
  t.deepEqual([...new Set(marked.map((f) => `${f.at} ${innerLayer(f, 'ipv4')!.src}->${innerLayer(f, 'ipv4')!.dst} in ${f.outerSrc}->${f.outerDst}`))].sort(), [
    `hv1 10.1.1.11->10.1.2.12 in ${hv1}->${hv4}`,
    `hv1 10.1.2.12->10.1.1.11 in ${hv4}->${hv1}`,
    `hv4 10.1.1.11->10.1.2.12 in ${hv1}->${hv4}`,
    `hv4 10.1.2.12->10.1.1.11 in ${hv4}->${hv1}`,
  ]);
});

test.serial('typed errors and exit statuses: unknown VM 1, bad address 2, no controller 3, switch not connected 3', async (t) => {
  const unknown = await runCliAsync('trace', '--from', 'nosuchvm', '--to', '10.1.1.1', '--control', control());
  t.is(unknown.status, 1);
  t.regex(unknown.stderr, /no VM port 'nosuchvm' in the model/);
  const bad = await runCliAsync('trace', '--from', 'web1', '--to', '10.1.1.256', '--control', control());
  t.is(bad.status, 2);
  t.regex(bad.stderr, /--to: '10\.1\.1\.256' is not IP or IP:PORT/);
  const absent = await runCliAsync('trace', '--from', 'web1', '--to', '10.1.1.12', '--control', `unix:${join(dir, 'no-controller.sock')}`);
  t.is(absent.status, 3);
  t.regex(absent.stderr, /cannot ask the controller/);
  // hv3's OVS goes away (the scenario's own daemon, by its pidfile): a trace that needs it says so
  const pid = Number(readFileSync(join(ctx!.state.hypervisors.hv3!.rundir, 'ovs-vswitchd.pid'), 'utf8'));
  process.kill(pid, 'SIGKILL');
  const gone = await waitFor(
    'the controller sees hv3 gone',
    () => runCliAsync('trace', '--from', 'web1', '--to', '10.1.1.12', '--control', control()),
    (r) => r.status !== 0,
    { timeoutMs: 20_000, intervalMs: 500, describe: (r) => `exit ${r.status} ${r.stderr}` },
  );
  t.is(gone.status, 3);
  t.regex(gone.stderr, /hv3's switch 0x13 is not connected/);
  t.is((await runCliAsync('trace', '--from', 'web1', '--to', '10.1.2.11', '--control', control())).status, 0, 'a path without hv3 still traces');
});
