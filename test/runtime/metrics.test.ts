/**
 * `zonemesh run --metrics`: the exposition served over HTTP, checked series by series against fake
 * switches running the overlay apps on models/two-zones.yaml.
 */
import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { BehaviorSubject, NEVER } from 'rxjs';
import { APP_REGISTRY, bindAppServices } from '../../src/apps/registry';
import { silentLogger } from '../../src/controller';
import type { ModelStore, NetworkModel } from '../../src/model';
import { OFP_NO_BUFFER, OFPET, type PacketIn } from '../../src/openflow';
import { MAX_UNMODELLED_PORTS, MetricsServerError, Runtime, validateRunConfig, type RunConfig } from '../../src/runtime';
import { BACKEND_HEALTH, BootpOp, BROADCAST_MAC, buildDhcp, buildPacket, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DhcpMessageType, makeCookie, type BackendHealth, type BackendHealthSource } from '../../src/sdk';
import { runConfig } from '../../src/cli/run';
import { ACL_APP_ID } from '../../src/apps/acl/flows';
import { twoZones, edit } from '../apps/helpers';
import { configProblems } from '../helpers/config';
import { FakeSwitch, fakePort, ipv4Of, type FakeFlow } from '../../src/testing';
import { declaredNames, sampleValue, samples, scrape } from '../helpers/metrics';
import { OVERLAY_APPS, waitFor } from '../helpers/overlay';
import { REPO_ROOT } from '../helpers/paths';
import { next, nextWhere, until } from '../controller/util';

const HV1 = 0x11n;
const HV2 = 0x12n;
const hv1 = { dpid: '0000000000000011', hypervisor: 'hv1' };
const hv2 = { dpid: '0000000000000012', hypervisor: 'hv2' };

/** The overlay apps (or `apps`) on `model`, serving metrics on an ephemeral port; stopped when the test ends. */
async function startOverlay(t: ExecutionContext, model: NetworkModel, controller: { packetInRate?: number; packetInBurst?: number } = {}, apps: readonly string[] = OVERLAY_APPS) {
  const models = new BehaviorSubject(model);
  const store: ModelStore = { model$: models, rejected$: NEVER, current: () => models.value };
  const config: RunConfig = {
    apps: [...apps],
    listen: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }],
    dial: [],
    logLevel: 'silent',
    settings: {},
    // the timer's polls (first one anywhere in the hour) read the same counters as the test's own
    metrics: { listen: '127.0.0.1:0', pollIntervalMs: 3_600_000 },
  };
  const runtime = new Runtime({ config, registry: APP_REGISTRY, bindServices: bindAppServices, modelStore: store, logger: silentLogger(), reconciler: { bundles: false }, controller });
  t.teardown(() => runtime.stop());
  await runtime.start();
  return { runtime, models, port: runtime.listening[0]!.port!, metricsPort: runtime.metricsPort! };
}

/** A fake switch connected and fully synced. */
async function connect(t: ExecutionContext, runtime: Runtime, port: number, sw: FakeSwitch): Promise<FakeSwitch> {
  t.teardown(() => sw.close());
  const synced = nextWhere(runtime.reconciler.synced$, (r) => r.dpid === sw.dpid);
  await sw.connect({ transport: 'tcp', port });
  await synced;
  return sw;
}

function poll(runtime: Runtime, dpid: bigint) {
  return runtime.metrics!.poller.poll(runtime.controller.session(dpid)!);
}

function flowAt(sw: FakeSwitch, tableId: number, priority: number, cookie?: bigint): FakeFlow[] {
  const found = sw.flowTable.flows().filter((f) => f.tableId === tableId && f.priority === priority && (cookie === undefined || f.cookie === cookie));
  if (found.length === 0) throw new Error(`no flow in table ${tableId} at priority ${priority}`);
  return found;
}

const tableId = (runtime: Runtime, name: string) => runtime.pipeline.table(name).id;
const WITH_DHCP = ['dhcp-responder', ...OVERLAY_APPS];
const BLUE_ACL = makeCookie(ACL_APP_ID, 'vpc:blue');
/** web-to-app-http, blue's first rule */
const FIRST_RULE_PRIORITY = 60_000;

const packetIn = (): PacketIn => ({ type: 'PACKET_IN', xid: 0, bufferId: OFP_NO_BUFFER, totalLen: 14, reason: 0, tableId: 0, cookie: 0n, match: [{ field: 'in_port', value: 1 }], data: Buffer.alloc(14) });

test('switch, port, drop and ACL series: values after a sync, a poll, a second switch, a reconnect and counter resets', async (t) => {
  const { runtime, port, metricsPort } = await startOverlay(t, twoZones());
  const sw1 = await connect(t, runtime, port, new FakeSwitch({ dpid: HV1, ports: [fakePort(1, 'web1'), fakePort(2, 'red1'), fakePort(4000, 'zm-tun')] }));

  let text = await scrape(metricsPort);
  // a fresh switch: the whole desired state went as adds, with a barrier (bundles are off here)
  t.is(sampleValue(text, 'zonemesh_flow_mods_sent_total', { ...hv1, command: 'add' }), sw1.flowTable.size);
  t.deepEqual(samples(text, 'zonemesh_flow_mods_sent_total', { ...hv1, command: 'delete' }), []);
  t.is(sampleValue(text, 'zonemesh_reconcile_runs_total', { ...hv1, kind: 'full', via: 'barrier' }), 1);
  t.is(sampleValue(text, 'zonemesh_reconcile_duration_seconds_count', { kind: 'full', via: 'barrier' }), 1);
  t.is(sampleValue(text, 'zonemesh_full_syncs', { state: 'running' }), 0, 'the full sync is over');
  t.is(sampleValue(text, 'zonemesh_full_syncs', { state: 'queued' }), 0);
  t.is(sampleValue(text, 'zonemesh_switch_flows_desired', hv1), runtime.desired.count(HV1));
  t.is(sampleValue(text, 'zonemesh_switch_up', hv1), 1);
  t.is(sampleValue(text, 'zonemesh_switch_up', hv2), 0, 'a model hypervisor not connected is 0');
  t.is(sampleValue(text, 'zonemesh_switch_connects_total', hv1), 1);
  t.is(sampleValue(text, 'zonemesh_openflow_sessions', { state: 'READY' }), 1);
  t.is(sampleValue(text, 'zonemesh_model_revisions_total'), 1);
  t.deepEqual(samples(text, 'zonemesh_switch_flows_installed'), [], 'nothing polled yet');

  // what the switch counted
  sw1.portCounters.set(1, { rxPackets: 42n, txPackets: 40n, rxBytes: 4200n, txBytes: 4000n, rxDropped: 1n, txDropped: 0xffff_ffff_ffff_ffffn });
  sw1.portCounters.set(2, { rxPackets: 7n });
  sw1.portCounters.set(4000, { txPackets: 9n });
  flowAt(sw1, tableId(runtime, 'spoofguard'), 0)[0]!.packetCount = 7n;
  const [ttl0, ttl1] = flowAt(sw1, tableId(runtime, 'l3.route'), 300);
  ttl0!.packetCount = 3n;
  ttl1!.packetCount = 2n;
  flowAt(sw1, tableId(runtime, 'arp.responder'), 100)[0]!.packetCount = 4n;
  flowAt(sw1, tableId(runtime, 'acl.rules'), 0)[0]!.packetCount = 6n;
  flowAt(sw1, tableId(runtime, 'acl.rules'), FIRST_RULE_PRIORITY, BLUE_ACL)[0]!.packetCount = 11n;
  const stats = await poll(runtime, HV1);
  t.is(stats.flows.length, 5, 'one FLOW_STATS per counted set: table misses, ttl, no-route, ARP, ACL');

  text = await scrape(metricsPort);
  const web1 = { ...hv1, vpc: 'blue', subnet: 'web', port: 'web1' };
  t.is(sampleValue(text, 'zonemesh_port_receive_packets_total', web1), 42);
  t.is(sampleValue(text, 'zonemesh_port_transmit_packets_total', web1), 40);
  t.is(sampleValue(text, 'zonemesh_port_receive_bytes_total', web1), 4200);
  t.is(sampleValue(text, 'zonemesh_port_transmit_bytes_total', web1), 4000);
  t.is(sampleValue(text, 'zonemesh_port_receive_dropped_packets_total', web1), 1);
  t.is(sampleValue(text, 'zonemesh_port_transmit_dropped_packets_total', web1), 0, 'a counter OVS does not keep (all ones) is 0');
  t.is(sampleValue(text, 'zonemesh_port_receive_packets_total', { ...hv1, vpc: 'red', subnet: 'web', port: 'red1' }), 7);
  t.is(sampleValue(text, 'zonemesh_port_transmit_packets_total', { ...hv1, vpc: '', subnet: '', port: 'zm-tun' }), 9, 'a port outside the model by its OVS name');
  const drop = (reason: string) => sampleValue(text, 'zonemesh_dropped_packets_total', { ...hv1, reason });
  t.is(drop('spoofguard'), 7);
  t.is(drop('ttl_expired'), 5);
  t.is(drop('unknown_arp'), 4);
  t.is(drop('acl_default_deny'), 6);
  t.is(drop('no_route'), 0);
  t.is(sampleValue(text, 'zonemesh_dropped_packets_total', { ...hv1, reason: 'table_miss', table: 'classify' }), 0);
  t.is(sampleValue(text, 'zonemesh_acl_rule_matched_packets_total', { vpc: 'blue', rule: 'web-to-app-http' }), 11);
  t.is(sampleValue(text, 'zonemesh_acl_rule_matched_packets_total', { vpc: 'blue', rule: 'app-to-db-sql' }), 0);
  t.is(sampleValue(text, 'zonemesh_switch_flows_installed', hv1), sw1.flowTable.size);
  t.true(sampleValue(text, 'zonemesh_switch_echo_rtt_seconds', hv1) > 0);
  t.is(sampleValue(text, 'zonemesh_stats_poll_duration_seconds_count'), 1);

  // a rule's hits add up over the switches holding it
  const sw2 = await connect(t, runtime, port, new FakeSwitch({ dpid: HV2, ports: [fakePort(1, 'app1')] }));
  flowAt(sw2, tableId(runtime, 'acl.rules'), FIRST_RULE_PRIORITY, BLUE_ACL)[0]!.packetCount = 5n;
  await poll(runtime, HV2);
  text = await scrape(metricsPort);
  t.is(sampleValue(text, 'zonemesh_acl_rule_matched_packets_total', { vpc: 'blue', rule: 'web-to-app-http' }), 16);
  t.is(sampleValue(text, 'zonemesh_openflow_sessions', { state: 'READY' }), 2);

  // packet-ins: read from the session's counters when scraped
  for (let i = 0; i < 3; i++) sw1.send(packetIn());
  await until(() => runtime.controller.session(HV1)!.stats.packetIns === 3);

  // reconnect: nothing to send, counted; the switch then restarts its counters (OVS restart)
  const down = next(runtime.controller.switchDown$);
  sw1.disconnect();
  await down;
  t.is(sampleValue(await scrape(metricsPort), 'zonemesh_switch_up', hv1), 0);
  await connect(t, runtime, port, sw1);
  sw1.portCounters.set(1, { rxPackets: 10n });
  flowAt(sw1, tableId(runtime, 'acl.rules'), FIRST_RULE_PRIORITY, BLUE_ACL)[0]!.packetCount = 2n;
  await poll(runtime, HV1);
  text = await scrape(metricsPort);
  t.is(sampleValue(text, 'zonemesh_switch_connects_total', hv1), 2);
  t.is(sampleValue(text, 'zonemesh_switch_disconnects_total', { ...hv1, reason: 'peer_closed' }), 1);
  t.is(sampleValue(text, 'zonemesh_reconcile_runs_total', { ...hv1, kind: 'full', via: 'none' }), 1, 'the reconnect found the switch in sync');
  t.is(sampleValue(text, 'zonemesh_flow_mods_sent_total', { ...hv1, command: 'add' }), sw1.flowTable.size, 'no flow-mod on reconnect');
  t.is(sampleValue(text, 'zonemesh_port_receive_packets_total', web1), 52, 'a counter that went down counts from zero again: 42 + 10');
  t.is(sampleValue(text, 'zonemesh_acl_rule_matched_packets_total', { vpc: 'blue', rule: 'web-to-app-http' }), 18, '11 + 5 + 2: the sum never goes back');
  t.is(sampleValue(text, 'zonemesh_packet_ins_received_total', hv1), 3, "the closed session's packet-ins stay counted");
});

test('errors by type and code, packet-ins dropped by the rate limit, model revisions', async (t) => {
  const { runtime, models, port, metricsPort } = await startOverlay(t, twoZones(), { packetInRate: 1, packetInBurst: 2 });
  const route = tableId(runtime, 'l3.route');
  const sw = new FakeSwitch({ dpid: HV1, ports: [fakePort(1, 'web1')], errorFor: (m) => (m.type === 'FLOW_MOD' && m.tableId === route ? { errType: OFPET.FLOW_MOD_FAILED, code: 5 } : undefined) });
  await connect(t, runtime, port, sw);
  const rejected = runtime.desired.flows(HV1).filter((f) => f.tableId === route).length;
  t.true(rejected > 0);
  for (let i = 0; i < 10; i++) sw.send(packetIn());
  const session = runtime.controller.session(HV1)!;
  await until(() => session.stats.packetIns + session.stats.packetInsDropped === 10);
  models.next(edit(twoZones(), (doc) => doc.ports.pop()));

  const text = await scrape(metricsPort);
  t.is(sampleValue(text, 'zonemesh_switch_errors_total', { ...hv1, type: 'FLOW_MOD_FAILED', code: '5' }), rejected);
  t.is(sampleValue(text, 'zonemesh_reconcile_errors_total', { ...hv1, kind: 'full' }), rejected);
  t.is(sampleValue(text, 'zonemesh_packet_ins_received_total', hv1), 10);
  t.is(sampleValue(text, 'zonemesh_packet_ins_dropped_total', hv1), session.stats.packetInsDropped);
  t.true(session.stats.packetInsDropped >= 7, `${session.stats.packetInsDropped} dropped`);
  t.is(sampleValue(text, 'zonemesh_model_revisions_total'), 2);
});

test('a switch outside the model: its own ports up to the cap, the rest under port="_other"; its series go when it does', async (t) => {
  const { runtime, port, metricsPort } = await startOverlay(t, twoZones());
  const ports = Array.from({ length: MAX_UNMODELLED_PORTS + 6 }, (_, i) => fakePort(i + 1, `eth${i + 1}`));
  const sw = await connect(t, runtime, port, new FakeSwitch({ dpid: 0x99n, ports }));
  for (const p of ports) sw.portCounters.set(p.portNo, { rxPackets: 1n });
  await poll(runtime, 0x99n);
  let text = await scrape(metricsPort);
  const stray = { dpid: '0000000000000099', hypervisor: '' };
  const series = samples(text, 'zonemesh_port_receive_packets_total', stray);
  t.is(series.length, MAX_UNMODELLED_PORTS + 1);
  t.is(sampleValue(text, 'zonemesh_port_receive_packets_total', { ...stray, port: 'eth1' }), 1);
  t.is(sampleValue(text, 'zonemesh_port_receive_packets_total', { ...stray, port: '_other' }), 6);
  const down = next(runtime.controller.switchDown$);
  sw.disconnect();
  await down;
  text = await scrape(metricsPort);
  t.deepEqual(samples(text, 'zonemesh_port_receive_packets_total', stray), []);
  t.deepEqual(samples(text, 'zonemesh_switch_up', stray), []);
});

test("dhcp-responder's counts: replies by type and unanswered packets by reason, per switch; its drops by reason", async (t) => {
  const { runtime, port, metricsPort } = await startOverlay(t, twoZones(), {}, WITH_DHCP);
  const sw = await connect(t, runtime, port, new FakeSwitch({ dpid: HV1, ports: [fakePort(1, 'web1'), fakePort(2, 'red1')] }));
  const dhcpTable = tableId(runtime, 'dhcp-responder.in');
  const discover = (mac: string, xid: number) =>
    buildPacket([
      { type: 'ethernet', dst: BROADCAST_MAC, src: mac },
      { type: 'ipv4', src: '0.0.0.0', dst: '255.255.255.255' },
      { type: 'udp', srcPort: DHCP_CLIENT_PORT, dstPort: DHCP_SERVER_PORT },
      {
        type: 'raw',
        data: buildDhcp({
          op: BootpOp.REQUEST, htype: 1, hlen: 6, hops: 0, xid, secs: 0, broadcast: false, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0',
          chaddr: mac, options: { messageType: DhcpMessageType.DISCOVER },
        }),
      },
    ]);
  const send = (frame: Buffer, inPort: number) =>
    sw.send({ ...packetIn(), totalLen: frame.length, tableId: dhcpTable, match: [{ field: 'in_port', value: inPort }], data: frame });
  const web1 = twoZones().ports.find((p) => p.name === 'web1')!;
  const offers = sw.nextMessage('PACKET_OUT');
  send(discover(web1.mac, 1), 1);
  await offers;
  send(discover(web1.mac, 2), 2); // web1's MAC on red1's port
  send(discover('02:00:00:99:99:99', 3), 1);
  send(discover(web1.mac, 4).subarray(0, 60), 1);
  const text = await waitFor('the unanswered packets counted', () => scrape(metricsPort), (x) => samples(x, 'zonemesh_dhcp_unanswered_total').length === 3);
  t.is(sampleValue(text, 'zonemesh_dhcp_replies_total', { ...hv1, type: 'offer' }), 1);
  t.is(sampleValue(text, 'zonemesh_dhcp_unanswered_total', { ...hv1, reason: 'wrong_port' }), 1);
  t.is(sampleValue(text, 'zonemesh_dhcp_unanswered_total', { ...hv1, reason: 'unknown_mac' }), 1);
  t.is(sampleValue(text, 'zonemesh_dhcp_unanswered_total', { ...hv1, reason: 'malformed' }), 1);

  // what the switch itself dropped: the drop flows' counters, by priority
  const dropFlows = sw.flowTable.flows().filter((f) => f.tableId === dhcpTable && f.instructions.length === 0);
  t.deepEqual(
    dropFlows.map((f) => f.priority).sort((a, b) => a - b),
    [90, 90, 100, 100, 150, 150, 150, 150],
    'for DHCPv4 and DHCPv6 each: server from a VM, unknown MAC, wrong port (one per MAC of web1 and red1)',
  );
  for (const f of dropFlows) f.packetCount = BigInt(f.priority);
  await poll(runtime, HV1);
  const after = await scrape(metricsPort);
  const drop = (reason: string) => sampleValue(after, 'zonemesh_dropped_packets_total', { ...hv1, reason, table: 'dhcp-responder.in' });
  t.is(drop('dhcp_wrong_port'), 600, 'four flows of 150');
  t.is(drop('dhcp_unknown_mac'), 200);
  t.is(drop('dhcp_from_vm_server'), 180);
});

test("lb-health: each decided backend's state, and the packets no check took by reason", async (t) => {
  const withCheck = edit(twoZones(), (doc) => {
    doc.vpcs.find((v: { name: string }) => v.name === 'blue').loadBalancers = [
      { name: 'web-lb', subnet: 'web', vip: '10.1.1.100', ports: [80], backends: [{ port: 'web1' }, { port: 'web2' }], healthCheck: { type: 'tcp', intervalSeconds: 3600, timeoutSeconds: 1 } },
    ];
  });
  const { runtime, port, metricsPort } = await startOverlay(t, withCheck, {}, ['lb-health']);
  const sw = await connect(t, runtime, port, new FakeSwitch({ dpid: HV1, ports: [fakePort(1, 'web1')] }));
  const board = runtime.container.get<BackendHealthSource & { publish(h: BackendHealth): void }>(BACKEND_HEALTH);
  t.deepEqual(samples(await scrape(metricsPort), 'zonemesh_lb_backend_up'), [], 'nothing decided yet');
  board.publish({ vpc: 'blue', loadBalancer: 'web-lb', port: 'web1', state: 'up', reason: undefined, at: 1 });
  board.publish({ vpc: 'blue', loadBalancer: 'web-lb', port: 'web2', state: 'down', reason: 'refused: RST to SYN', at: 2 });
  const text = await scrape(metricsPort);
  t.is(sampleValue(text, 'zonemesh_lb_backend_up', { vpc: 'blue', load_balancer: 'web-lb', port: 'web1' }), 1);
  t.is(sampleValue(text, 'zonemesh_lb_backend_up', { vpc: 'blue', load_balancer: 'web-lb', port: 'web2' }), 0);

  // a VM's segment to a check port while no check is in flight (the interval is an hour)
  const web1 = withCheck.ports.find((p) => p.name === 'web1')!;
  const blueWeb = withCheck.subnets.find((s) => s.vpc === 'blue' && s.name === 'web')!;
  const frame = buildPacket([
    { type: 'ethernet', dst: blueWeb.routerMac, src: web1.mac },
    { type: 'ipv4', src: ipv4Of(web1), dst: blueWeb.gateway! },
    { type: 'tcp', srcPort: 80, dstPort: 0xc001, flags: 0x12 },
  ]);
  sw.send({ ...packetIn(), totalLen: frame.length, tableId: tableId(runtime, 'lb-health.answers'), data: frame });
  const counted = await waitFor('the ignored packet counted', () => scrape(metricsPort), (x) => samples(x, 'zonemesh_lb_health_packet_ins_ignored_total').length === 1);
  t.is(sampleValue(counted, 'zonemesh_lb_health_packet_ins_ignored_total', { ...hv1, reason: 'no_check' }), 1);
});

test('every metric the Grafana dashboard queries is in the exposition', async (t) => {
  const { runtime, port, metricsPort } = await startOverlay(t, twoZones(), {}, [...WITH_DHCP, 'lb-health']);
  await connect(t, runtime, port, new FakeSwitch({ dpid: HV1, ports: [fakePort(1, 'web1')] }));
  await poll(runtime, HV1);
  const declared = declaredNames(await scrape(metricsPort));
  const dashboard = readFileSync(join(REPO_ROOT, 'docs', 'grafana-dashboard.json'), 'utf8');
  const queried = new Set(JSON.stringify(JSON.parse(dashboard)).match(/zonemesh_[a-z0-9_]+/g));
  t.true(queried.size >= 20, `${queried.size} metrics queried`);
  t.deepEqual([...queried].filter((name) => !declared.has(name)), []);
  // and every metric docs/metrics.md documents is declared, and every declared one documented
  // (zonemesh_process_* and zonemesh_nodejs_* stand for prom-client's default metrics)
  const documented = new Set(readFileSync(join(REPO_ROOT, 'docs', 'metrics.md'), 'utf8').match(/zonemesh_[a-z0-9_]*[a-z0-9]/g));
  const ours = [...declared].filter((n) => !/_(bucket|sum|count)$/.test(n) || !declared.has(n.replace(/_(bucket|sum|count)$/, '')));
  t.deepEqual(ours.filter((n) => !documented.has(n) && !/^zonemesh_(process|nodejs)_/.test(n)), []);
  t.deepEqual([...documented].filter((n) => !declared.has(n) && !/^zonemesh_(process|nodejs)$/.test(n)), []);
});

test('config: a bad address, a bad interval and --workers with metrics are refused; a port in use is one clear error', async (t) => {
  const base = { apps: [], listen: [':6653'] };
  t.deepEqual(configProblems(() => validateRunConfig({ ...base, metrics: { listen: 'localhost' } }, 'run.yaml')), [
    "metrics.listen: 'localhost' is not 'HOST:PORT', '[IPv6]:PORT' or ':PORT'",
  ]);
  t.deepEqual(configProblems(() => validateRunConfig({ ...base, metrics: { listen: ':9464', pollIntervalMs: 10, every: 1 } }, 'run.yaml')), [
    'metrics.every: unknown key (known: listen, pollIntervalMs)',
    'metrics.pollIntervalMs: 10 is not a whole number of milliseconds >= 1000',
  ]);
  t.deepEqual(configProblems(() => validateRunConfig({ ...base, workers: 2, metrics: { listen: ':9464' } }, 'run.yaml')), [
    'metrics: needs workers: 1 (workers is 2): each worker sees only its own switches; run one process to serve metrics',
  ]);
  t.is(runConfig(['--metrics', '[::1]:9464']).config.metrics?.listen, '[::1]:9464');
  t.throws(() => runConfig(['--metrics', '127.0.0.1:99999']), { message: "command line: metrics.listen: '127.0.0.1:99999' is not 'HOST:PORT', '[IPv6]:PORT' or ':PORT'" });

  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => taken.close());
  const busy = (taken.address() as { port: number }).port;
  const runtime = new Runtime({
    config: { apps: [], listen: [], dial: [], logLevel: 'silent', settings: {}, metrics: { listen: `127.0.0.1:${busy}` } },
    registry: APP_REGISTRY,
    logger: silentLogger(),
  });
  t.teardown(() => runtime.stop());
  await t.throwsAsync(runtime.start(), { instanceOf: MetricsServerError, message: `cannot serve metrics on 127.0.0.1:${busy}: address in use (EADDRINUSE)` });
});
