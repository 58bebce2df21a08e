import test from 'ava';
import { filter, firstValueFrom, take, timeout, toArray } from 'rxjs';
import { APP_REGISTRY, bindAppServices } from '../../src/apps/registry';
import {
  DEFAULT_TUNNEL_MONITOR_SETTINGS,
  PROBE_REPLY_MAC,
  PROBE_REQUEST_MAC,
  PROBE_TABLE,
  TUNNEL_MONITOR_APP_ID,
  TUNNEL_MONITOR_TABLES,
  TunnelHealthBoard,
  TunnelMonitor,
  TunnelMonitorApp,
  parseProbe,
  parseTunnelMonitorSettings,
  probeFlows,
  probeFrame,
  probePairs,
  type ProbePair,
  type TunnelMonitorSettings,
} from '../../src/apps/tunnel-monitor';
import { TUNNEL_MESH_TABLES } from '../../src/apps/tunnel-mesh';
import { validateModel, type NetworkModel } from '../../src/model';
import {
  AppSettingsError,
  FlowBuilder,
  OFPP,
  Pipeline,
  TUNNEL_HEALTH,
  TUNNEL_OFPORT,
  makeCookie,
  tableMissFlows,
  type PacketOut,
  type SimPacket,
  type TunnelPairHealth,
} from '../../src/sdk';
import { FakeSwitch, FlowTableSim, TestModelStore, fakePort, runApps } from '../../src/testing';

const HV = (n: number, zone = 'a') => ({ name: `hv${n}`, zone, tunnelIp: `172.16.1.${10 + n}`, datapathId: `0x${(0x10 + n).toString(16)}` });

/** hv1..hv3 host blue; hv4 hosts red only */
function modelDoc() {
  const port = (name: string, vpc: string, hv: number, last: number) => ({ name, vpc, subnet: 'web', mac: `02:00:00:00:0${hv}:${last.toString(16).padStart(2, '0')}`, ip: `10.1.1.${last}`, hypervisor: `hv${hv}` });
  return {
    zones: [{ name: 'a', underlay: '172.16.1.0/24' }],
    hypervisors: [HV(1), HV(2), HV(3), HV(4)],
    vpcs: [
      { name: 'blue', vni: 7, subnets: [{ name: 'web', cidr: '10.1.1.0/24', gateway: '10.1.1.1' }] },
      { name: 'red', vni: 8, subnets: [{ name: 'web', cidr: '10.1.1.0/24', gateway: '10.1.1.1' }] },
    ],
    ports: [port('b1', 'blue', 1, 11), port('b2', 'blue', 2, 12), port('b3', 'blue', 3, 13), port('r4', 'red', 4, 14)],
  };
}

const model = (doc: object = modelDoc()): NetworkModel => validateModel(doc, 'test model');
const key = (p: ProbePair) => [p.from.name, p.to.name].sort().join('-');

// ---- settings ----

test('settings: defaults, and every bad field named in one AppSettingsError', (t) => {
  t.deepEqual(parseTunnelMonitorSettings(undefined), DEFAULT_TUNNEL_MONITOR_SETTINGS);
  t.like(parseTunnelMonitorSettings({ intervalMs: 50, windowMs: 10_000, lossThreshold: 0.02, pairs: 'all' }), { intervalMs: 50, windowMs: 10_000, lossThreshold: 0.02, pairs: 'all' });
  const e = t.throws(() => parseTunnelMonitorSettings({ intervalMs: 0, lossThreshold: 1, pairs: 'some', windwMs: 5 }), { instanceOf: AppSettingsError })!;
  t.regex(e.message, /windwMs: is not a setting of tunnel-monitor/);
  t.regex(e.message, /intervalMs: must be an integer in 5\.\.60000/);
  t.regex(e.message, /lossThreshold: must be a number between 0 and 1/);
  t.regex(e.message, /pairs: must be 'all' or 'shared-vpc'/);
  t.throws(() => parseTunnelMonitorSettings({ intervalMs: 1000, windowMs: 5000 }), { message: /windowMs: must hold at least 10 probes/ });
  t.throws(() => parseTunnelMonitorSettings({ replyTimeoutMs: 3000, downAfterMs: 2000 }), { message: /replyTimeoutMs: must not exceed downAfterMs/ });
  t.throws(() => parseTunnelMonitorSettings('fast'), { message: /must be a mapping/ });
  t.throws(() => new TunnelMonitorApp({ 'tunnel-monitor': { intervalMs: 'fast' } }, new TunnelHealthBoard()), { instanceOf: AppSettingsError });
});

// ---- pairs and flows ----

test('pairs: every two hypervisors, or those sharing a VPC; the prober of a pair does not depend on the rest of the model', (t) => {
  t.deepEqual(probePairs(model(), 'all').map(key), ['hv1-hv2', 'hv1-hv3', 'hv1-hv4', 'hv2-hv3', 'hv2-hv4', 'hv3-hv4']);
  t.deepEqual(probePairs(model(), 'shared-vpc').map(key), ['hv1-hv2', 'hv1-hv3', 'hv2-hv3'], 'hv4 shares no VPC');
  const before = new Map(probePairs(model(), 'all').map((p) => [key(p), p.from.name]));
  const doc = modelDoc();
  doc.hypervisors.unshift(HV(0));
  const after = new Map(probePairs(model(doc), 'all').map((p) => [key(p), p.from.name]));
  for (const [k, from] of before) t.is(after.get(k), from, `${k} keeps its prober`);
  const probers = [...after.values()];
  t.true(new Set(probers).size > 1, 'probing is spread over the hypervisors');
});

function probePipeline() {
  const pipeline = new Pipeline([...TUNNEL_MONITOR_TABLES, ...TUNNEL_MESH_TABLES]);
  const flow = (table: string, owner: string) => new FlowBuilder(pipeline, pipeline.table(table), makeCookie(TUNNEL_MONITOR_APP_ID, owner));
  return { pipeline, flow };
}

test('flows: the target reflects a probe back through the tunnel to its prober, which sends it to the controller (FlowTableSim)', (t) => {
  const { pipeline, flow } = probePipeline();
  t.is(pipeline.table(PROBE_TABLE).id, 0, 'the probe stage comes before classify');
  const pairs = probePairs(model(), 'shared-vpc');
  const bySwitch = probeFlows({ flow }, pairs);
  const sim = (dpid: bigint) => new FlowTableSim([...tableMissFlows(pipeline), ...[...bySwitch.get(dpid)!.values()].flat()]);
  for (const pair of pairs) {
    const fromTunnel = (src: string, ethDst: string): SimPacket => ({ tunnel_id: 0n, tun_ipv4_src: src, eth_dst: ethDst, eth_src: '0e:00:5a:4d:00:00', eth_type: 0x88b5 });
    const atTarget = sim(pair.to.datapathId).inject(fromTunnel(pair.from.tunnelIp, PROBE_REQUEST_MAC), TUNNEL_OFPORT);
    t.is(atTarget.outputs.length, 1);
    t.like(atTarget.outputs[0], { port: TUNNEL_OFPORT, packet: { tun_ipv4_dst: pair.from.tunnelIp, eth_dst: PROBE_REPLY_MAC, tunnel_id: 0n } });
    const atProber = sim(pair.from.datapathId).inject(fromTunnel(pair.to.tunnelIp, PROBE_REPLY_MAC), TUNNEL_OFPORT);
    t.deepEqual(atProber.outputs.map((o) => o.port), [OFPP.CONTROLLER]);
    // a request claiming to come from an address no pair has, or a reply from someone else: not ours
    t.deepEqual(sim(pair.to.datapathId).inject(fromTunnel('172.16.9.9', PROBE_REQUEST_MAC), TUNNEL_OFPORT).outputs, []);
    t.deepEqual(sim(pair.from.datapathId).inject(fromTunnel('172.16.9.9', PROBE_REPLY_MAC), TUNNEL_OFPORT).outputs, []);
  }
  t.false(bySwitch.has(model().hypervisors[3]!.datapathId), 'hv4 shares no VPC: no probe flows');
});

test('probe frames carry nonce and sequence number; other frames are not probes', (t) => {
  const frame = probeFrame(0xdeadbeef, 42);
  t.is(frame.length, 60);
  t.deepEqual(parseProbe(frame), { nonce: 0xdeadbeef, seq: 42 });
  t.is(parseProbe(frame.subarray(0, 20)), undefined);
  const other = Buffer.from(frame);
  other.writeUInt16BE(0x0800, 12);
  t.is(parseProbe(other), undefined);
});

// ---- the measurements, on a fake clock ----

function monitorOf(settings: Partial<TunnelMonitorSettings> = {}) {
  const pairs = probePairs(model(), 'shared-vpc');
  const monitor = new TunnelMonitor({ ...DEFAULT_TUNNEL_MONITOR_SETTINGS, ...settings }, 7);
  monitor.setPairs(pairs, 0);
  for (const hv of model().hypervisors) monitor.switchUp(hv.datapathId, 0);
  let now = 0;
  /** one probe round every intervalMs for `ms`; `lose(i)` says whether the i-th probe of a pair is lost */
  const run = (ms: number, lose: (pair: ProbePair, i: number) => boolean = () => false) => {
    const counts = new Map<string, number>();
    for (const end = now + ms; now < end; now += monitor.intervalMs) {
      const sent: [ProbePair, number][] = [];
      for (const pair of monitor.probeable()) {
        const i = counts.get(pair.key) ?? 0;
        counts.set(pair.key, i + 1);
        monitor.send(pair, now, (seq) => (lose(pair, i) || sent.push([pair, seq]), true));
      }
      for (const [pair, seq] of sent) monitor.reply(7, seq, pair.from.datapathId, now + 2);
      monitor.expire(now);
    }
    return monitor.evaluate(now);
  };
  return { monitor, pairs, run, now: () => now };
}

const states = (hs: readonly TunnelPairHealth[]) => Object.fromEntries(hs.map((h) => [[h.from, h.to].sort().join('-'), h.state]));

test('loss at or above the threshold over the window makes a pair lossy; below it, and on other pairs, it stays up', (t) => {
  const { pairs, run } = monitorOf();
  const lossy = pairs[0]!;
  const almost = pairs[1]!;
  run(30_000, (pair, i) => (pair === lossy && i % 100 === 0) || (pair === almost && i % 300 === 0)); // 1 % and 0.33 %
  const { all } = run(1);
  t.deepEqual(states(all), { [key(lossy)]: 'lossy', [key(almost)]: 'up', [key(pairs[2]!)]: 'up' });
  const health = all.find((h) => h.from === lossy.from.name)!;
  t.true(Math.abs(health.lossRatio - 0.01) < 0.002, `loss ${health.lossRatio}`);
  t.is(health.rttMs, 2);
  const recovered = run(25_000);
  t.is(states(recovered.all)[key(lossy)], 'up', 'the window forgets');
  t.true(recovered.changed.some((h) => h.from === lossy.from.name && h.state === 'up'));
});

test('a pair whose probes stop coming back is down after downAfterMs; a reply brings it up with a fresh window', (t) => {
  const { monitor, pairs, run, now } = monitorOf();
  run(12_000);
  const dead = pairs[0]!;
  const silentFrom = now();
  let downAt: number | undefined;
  const seen: string[] = [];
  for (let ms = 0; ms < 3_000 && downAt === undefined; ms += 10) {
    const { changed } = run(10, (pair) => pair === dead);
    seen.push(...changed.filter((h) => h.from === dead.from.name).map((h) => h.state));
    if (seen.includes('down')) downAt = now();
  }
  t.deepEqual(seen, ['down'], 'an outage is not reported as loss first');
  t.true(downAt! - silentFrom >= 1_990 && downAt! - silentFrom <= 2_100, `down after ${downAt! - silentFrom} ms`);
  const back = run(12_000);
  t.deepEqual(states(back.all)[key(dead)], 'up', 'the losses while down do not make it lossy afterwards');
  t.is(monitor.probesInFlight, 0);
});

test('the prober switch going away flags its pairs down at once; losses before the first reply do not count', (t) => {
  const { monitor, pairs, run } = monitorOf();
  // the first 20 probes find no flows yet
  run(12_000, (_pair, i) => i < 20);
  t.deepEqual(Object.values(states(run(1).all)), ['up', 'up', 'up']);
  monitor.switchDown(pairs[0]!.from.datapathId);
  const { changed } = monitor.evaluate(12_001);
  t.deepEqual(
    changed.map((h) => h.state),
    pairs.filter((p) => p.from === pairs[0]!.from).map(() => 'down'),
  );
  t.false(monitor.probeable().some((p) => p.from === pairs[0]!.from), 'no probes from a switch that is gone');
});

test('a pair this controller cannot probe (its sends refused: a slave, a full queue) keeps its state instead of going down', (t) => {
  const { monitor, pairs, run } = monitorOf();
  run(12_000);
  let now = 12_000;
  for (; now < 20_000; now += 10) for (const pair of monitor.probeable()) monitor.send(pair, now, () => false);
  const { all } = monitor.evaluate(now);
  t.deepEqual(all.map((h) => h.state), pairs.map(() => 'up'));
});

test('replies that are not ours in flight are refused: another nonce, a sequence number not sent, the wrong switch', (t) => {
  const { monitor, pairs } = monitorOf();
  let seq = 0;
  monitor.send(pairs[0]!, 0, (s) => ((seq = s), true));
  t.false(monitor.reply(8, seq, pairs[0]!.from.datapathId, 1));
  t.false(monitor.reply(7, seq + 1000, pairs[0]!.from.datapathId, 1));
  t.false(monitor.reply(7, seq, pairs[0]!.to.datapathId, 1));
  t.true(monitor.reply(7, seq, pairs[0]!.from.datapathId, 1));
  t.false(monitor.reply(7, seq, pairs[0]!.from.datapathId, 2), 'a duplicate');
});

test('probes per second stay within maxProbesPerSecond: the interval stretches, and probes in flight are bounded', (t) => {
  const { monitor } = monitorOf({ intervalMs: 10, maxProbesPerSecond: 100, replyTimeoutMs: 1000 });
  t.is(monitor.intervalMs, 30, '3 pairs at most 100 probes/s');
  t.is(monitor.downAfterMs, 2_000, 'still the setting');
  const { monitor: sparse } = monitorOf({ intervalMs: 10, maxProbesPerSecond: 1, replyTimeoutMs: 1000 });
  t.is(sparse.intervalMs, 3_000);
  t.is(sparse.downAfterMs, 9_000, 'three stretched intervals: a pair is not down between two probes');
  for (let round = 0; round < 1000; round++) for (const pair of monitor.probeable()) monitor.send(pair, 0, () => true);
  t.is(monitor.probesInFlight, 100 + 3, 'maxProbesPerSecond × replyTimeout + one round');
});

// ---- the app on fake switches ----

test('the app on fake switches: probes go out as PACKET_OUTs into the tunnel, replies make the pair up on TUNNEL_HEALTH, silence makes it down', async (t) => {
  const doc = { ...modelDoc(), hypervisors: [HV(1), HV(2)], ports: modelDoc().ports.slice(0, 2) };
  const apps = await runApps({
    apps: { 'tunnel-mesh': APP_REGISTRY['tunnel-mesh']!, 'tunnel-monitor': TunnelMonitorApp },
    model: new TestModelStore(doc),
    settings: { 'tunnel-monitor': { intervalMs: 20, windowMs: 2_000, replyTimeoutMs: 200, downAfterMs: 400 } },
    bindServices: bindAppServices,
  });
  t.teardown(() => apps.stop());
  const board: TunnelHealthBoard = apps.runtime.container.get(TUNNEL_HEALTH);
  const switches = [1, 2].map((n) => new FakeSwitch({ dpid: BigInt(0x10 + n), ports: [fakePort(1, `b${n}`), fakePort(TUNNEL_OFPORT, 'zm-tun')] }));
  t.teardown(() => Promise.all(switches.map((s) => s.close())));
  for (const sw of switches) t.like(await apps.connect(sw), { errors: 0 });
  const [pair] = probePairs(model(doc), 'shared-vpc');
  const [prober, target] = pair!.from.name === 'hv1' ? switches : [switches[1]!, switches[0]!];
  const tableId = apps.runtime.pipeline.table(PROBE_TABLE).id;

  // the switches play the datapath: the PACKET_OUT's tunnel fields, the target's flows, back to the prober's flows
  const upSeen = firstValueFrom(board.health$.pipe(filter((h) => h.state === 'up'), timeout(5_000)));
  let answering = true;
  let answered = 0;
  prober!.received.length = 0;
  const answer = async () => {
    while (answering) {
      const out = (await prober!.nextMessage('PACKET_OUT', () => true, 5_000).catch(() => undefined)) as PacketOut | undefined;
      if (!out || !answering) break;
      const fields = Object.fromEntries(out.actions.flatMap((a) => (a.type === 'set_field' && 'value' in a.field ? [[a.field.field, a.field.value]] : [])));
      t.deepEqual(out.actions.at(-1), { type: 'output', port: TUNNEL_OFPORT, maxLen: 0 });
      t.like(fields, { tunnel_id: 0n, tun_ipv4_dst: pair!.to.tunnelIp });
      const reflected = new FlowTableSim(target!.flowTable.flows()).inject({ tunnel_id: 0n, tun_ipv4_src: pair!.from.tunnelIp, eth_dst: PROBE_REQUEST_MAC, eth_type: 0x88b5 }, TUNNEL_OFPORT);
      const back = reflected.outputs[0]!;
      t.is(back.packet.tun_ipv4_dst, pair!.from.tunnelIp);
      const home = new FlowTableSim(prober!.flowTable.flows()).inject({ ...back.packet, tun_ipv4_src: pair!.to.tunnelIp }, TUNNEL_OFPORT);
      if (home.outputs[0]?.port !== OFPP.CONTROLLER) break;
      const frame = Buffer.from(out.data);
      frame.write(PROBE_REPLY_MAC.replaceAll(':', ''), 0, 'hex');
      prober!.send({ type: 'PACKET_IN', xid: 0, bufferId: 0xffffffff, totalLen: frame.length, reason: 1, tableId, cookie: 0n, match: [{ field: 'in_port', value: TUNNEL_OFPORT }], data: frame });
      answered++;
    }
  };
  const answering$ = answer();
  const up = await upSeen;
  t.like(up, { from: pair!.from.name, to: pair!.to.name, state: 'up', lossRatio: 0 });
  t.true(up.rttMs! >= 0);
  t.true(answered > 0);
  t.deepEqual(board.snapshot().map((h) => h.state), ['up']);

  const silentAt = Date.now();
  const down = firstValueFrom(board.health$.pipe(filter((h) => h.state === 'down'), take(1), toArray(), timeout(5_000)));
  answering = false;
  await answering$;
  const [gone] = await down;
  t.like(gone, { from: pair!.from.name, to: pair!.to.name, state: 'down' });
  t.true(Date.now() - silentAt < 2_000, 'down within downAfterMs and a tick');
});
