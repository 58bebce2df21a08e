import test from 'ava';
import { filter, firstValueFrom, take, timeout, toArray } from 'rxjs';
import { bindAppServices } from '../../src/apps/registry';
import {
  BackendChecker,
  BackendHealthBoard,
  CHECK_PORT_BASE,
  CHECK_TABLE,
  LbHealthApp,
  MAX_CHECKS_IN_FLIGHT,
  MAX_PACKET_INS_PER_CHECK,
  checkFlows,
  checkTargets,
  statusOf,
  type CheckTarget,
} from '../../src/apps/lb-health';
import { validateModel, type NetworkModel } from '../../src/model';
import {
  BACKEND_HEALTH,
  FlowBuilder,
  OFPP,
  Pipeline,
  TcpFlag,
  buildPacket,
  findLayer,
  makeCookie,
  parsePacket,
  tableMissFlows,
  type BackendHealth,
  type PacketOut,
  type Placement,
} from '../../src/sdk';
import { FakeSwitch, FlowTableSim, TestModelStore, fakePort, runApps } from '../../src/testing';

const ROUTER_MAC_OF = (m: NetworkModel) => m.subnets[0]!.routerMac;

/** blue/web 10.1.1.0/24 on hv1 (web1) and hv2 (web2); web-lb checks both over HTTP, tcp-lb web2 over TCP */
function modelDoc(health: { http?: object; tcp?: object } = {}) {
  return {
    zones: [{ name: 'a', underlay: '172.16.1.0/24' }],
    hypervisors: [1, 2].map((n) => ({ name: `hv${n}`, zone: 'a', tunnelIp: `172.16.1.${10 + n}`, datapathId: `0x${(0x10 + n).toString(16)}` })),
    vpcs: [
      {
        name: 'blue',
        vni: 7,
        subnets: [{ name: 'web', cidr: '10.1.1.0/24', gateway: '10.1.1.1' }],
        loadBalancers: [
          { name: 'web-lb', subnet: 'web', vip: '10.1.1.100', ports: [80], backends: [{ port: 'web1', targetPort: 8080 }, { port: 'web2', targetPort: 8080 }], healthCheck: { type: 'http', path: '/healthz', intervalSeconds: 1, timeoutSeconds: 1, rise: 2, fall: 3, ...health.http } },
          { name: 'tcp-lb', subnet: 'web', vip: '10.1.1.101', ports: [5432], backends: [{ port: 'web2' }], healthCheck: { type: 'tcp', intervalSeconds: 2, timeoutSeconds: 1, rise: 1, fall: 2, ...health.tcp } },
          { name: 'unchecked', subnet: 'web', vip: '10.1.1.102', ports: [80], backends: [{ port: 'web1' }] },
        ],
      },
    ],
    ports: [1, 2].map((n) => ({ name: `web${n}`, vpc: 'blue', subnet: 'web', mac: `02:00:00:00:01:0${n}`, ip: `10.1.1.1${n}`, hypervisor: `hv${n}`, interface: `web${n}` })),
  };
}

const model = (doc: object = modelDoc()) => validateModel(doc, 'test model');
/** every port at ofport 5 of its hypervisor, except those named in `unplugged` */
function placement(m: NetworkModel, unplugged: readonly string[] = []): Placement {
  return {
    place: (port) => (unplugged.includes(port.name) ? undefined : { port, hypervisor: m.hypervisors.find((h) => h.name === port.hypervisor)!, dpid: m.hypervisors.find((h) => h.name === port.hypervisor)!.datapathId, ofport: 5 }),
  } as Placement;
}
const targetsOf = (m: NetworkModel = model(), unplugged: readonly string[] = []) => checkTargets(m, placement(m, unplugged));

interface Sent {
  dpid: bigint;
  ofport: number;
  frame: Buffer;
}
/** a transmit that records every frame and says it went out (or not, while `ok` is false) */
function recorder() {
  const sent: Sent[] = [];
  const r = {
    sent,
    ok: true,
    transmit: (dpid: bigint, ofport: number, frame: Buffer) => {
      if (r.ok) sent.push({ dpid, ofport, frame });
      return r.ok;
    },
    /** the TCP layer of the last frame sent */
    last() {
      const p = parsePacket(sent.at(-1)!.frame);
      return { eth: findLayer(p, 'ethernet')!, ip: findLayer(p, 'ipv4')!, tcp: findLayer(p, 'tcp')!, data: findLayer(p, 'raw')?.data };
    },
  };
  return r;
}

/** the VM's answer to the last segment `r` sent, as the switch sends it up */
function answer(target: CheckTarget, r: ReturnType<typeof recorder>, flags: number, opts: { seq?: number; data?: string; ackOffset?: number } = {}) {
  const { tcp } = r.last();
  return parsePacket(
    buildPacket([
      { type: 'ethernet', dst: target.sourceMac, src: target.vmMac },
      { type: 'ipv4', src: target.vmIp, dst: target.sourceIp },
      { type: 'tcp', srcPort: target.tcpPort, dstPort: tcp.srcPort, seq: opts.seq ?? 1000, ack: (tcp.seq + (opts.ackOffset ?? 1)) >>> 0, flags },
      ...(opts.data ? [{ type: 'raw' as const, data: Buffer.from(opts.data) }] : []),
    ]),
  );
}

/** a checker with `targets` whose first checks are all due at time 0 (random 0: no jitter) */
function checker(targets: readonly CheckTarget[], random = () => 0) {
  const c = new BackendChecker(random);
  c.setTargets(targets, 0);
  for (const t of targets) c.switchUp(t.dpid);
  return c;
}

// ---- targets and flows ----

test('targets: every backend of a checked load balancer, from its subnet gateway and router MAC, on its targetPort or the VIP port', (t) => {
  const m = model();
  const targets = targetsOf(m, ['web1']);
  t.deepEqual(targets.map((x) => [x.key, x.tcpPort, x.ofport, x.check.type]), [
    ['blue/web-lb/web1', 8080, undefined, 'http'],
    ['blue/web-lb/web2', 8080, 5, 'http'],
    ['blue/tcp-lb/web2', 5432, 5, 'tcp'],
  ]);
  t.like(targets[1], { sourceIp: '10.1.1.1', sourceMac: ROUTER_MAC_OF(m), vmIp: '10.1.1.12', vmMac: '02:00:00:00:01:02', dpid: 0x12n, hypervisor: 'hv2' });
});

test('flows: on the backend\'s own switch, only its VM\'s answers from the checked port to the gateway\'s check ports go to the controller', (t) => {
  const pipeline = new Pipeline([{ name: CHECK_TABLE, stage: 'intercept', miss: 'next', matches: ['in_port', 'eth_src', 'eth_type', 'ipv4_src', 'ipv4_dst', 'ip_proto', 'tcp_src', 'tcp_dst'], maskable: ['tcp_dst'] }, { name: 'rest', stage: 'l2', miss: 'drop', matches: [] }]);
  const ctx = { flow: (table: string, owner: string) => new FlowBuilder(pipeline, pipeline.table(table), makeCookie(36, owner)) };
  const flows = checkFlows(ctx, targetsOf(model(), ['web1']));
  t.deepEqual([...flows.keys()], [0x12n], 'web1 is not plugged in: hv1 gets nothing');
  t.is(flows.get(0x12n)!.length, 2, 'one flow per checked port of the VM');
  const sim = new FlowTableSim([...flows.get(0x12n)!, ...tableMissFlows(pipeline)]);
  const vmToGateway = { eth_src: '02:00:00:00:01:02', eth_type: 0x0800, ipv4_src: '10.1.1.12', ipv4_dst: '10.1.1.1', ip_proto: 6, tcp_src: 8080, tcp_dst: CHECK_PORT_BASE + 7 };
  t.is(sim.inject(vmToGateway, 5).outputs[0]?.port, OFPP.CONTROLLER);
  t.is(sim.inject({ ...vmToGateway, tcp_src: 5432 }, 5).outputs[0]?.port, OFPP.CONTROLLER);
  for (const other of [{ tcp_dst: 40000 }, { tcp_src: 22 }, { ipv4_src: '10.1.1.99' }, { eth_src: '02:00:00:00:01:99' }, { ipv4_dst: '10.1.1.2' }]) {
    t.deepEqual(sim.inject({ ...vmToGateway, ...other }, 5).outputs, [], JSON.stringify(other));
  }
  t.deepEqual(sim.inject(vmToGateway, 6).outputs, [], 'another switch port');
});

// ---- the checks' packets ----

test('TCP check: a SYN from the gateway into the VM port; SYN-ACK is a success and gets an RST; rise successes make it up', (t) => {
  const target = targetsOf().find((x) => x.key === 'blue/tcp-lb/web2')!;
  const c = checker([target]);
  const r = recorder();
  t.deepEqual(c.tick(0, r.transmit), []);
  t.like(r.sent[0], { dpid: 0x12n, ofport: 5 });
  const syn = r.last();
  t.like(syn.eth, { src: target.sourceMac, dst: target.vmMac });
  t.like(syn.ip, { src: '10.1.1.1', dst: '10.1.1.12' });
  t.like(syn.tcp, { dstPort: 5432, flags: TcpFlag.SYN });
  t.true(syn.tcp.srcPort >= CHECK_PORT_BASE);
  t.is(c.checksInFlight, 1);
  const up = c.receive(0x12n, 5, answer(target, r, TcpFlag.SYN | TcpFlag.ACK), 30, r.transmit);
  t.like(up, [{ vpc: 'blue', loadBalancer: 'tcp-lb', port: 'web2', state: 'up', reason: undefined, at: 30 }]);
  t.like(r.last().tcp, { flags: TcpFlag.RST, seq: (syn.tcp.seq + 1) >>> 0, dstPort: 5432 });
  t.is(c.checksInFlight, 0);
  t.is(c.receive(0x12n, 5, answer(target, r, TcpFlag.SYN | TcpFlag.ACK), 40, r.transmit), 'no_check', 'a late duplicate is ignored');
});

test('TCP check: RST means refused; fall failures make it down with the reason; a wrong ack number is not an answer', (t) => {
  const target = targetsOf().find((x) => x.key === 'blue/tcp-lb/web2')!;
  const c = checker([target]);
  const r = recorder();
  c.tick(0, r.transmit);
  t.is(c.receive(0x12n, 5, answer(target, r, TcpFlag.SYN | TcpFlag.ACK, { ackOffset: 2 }), 1, r.transmit), 'out_of_order');
  t.deepEqual(c.receive(0x12n, 5, answer(target, r, TcpFlag.RST | TcpFlag.ACK), 2, r.transmit), [], 'one failure of fall 2');
  t.deepEqual(c.tick(1_000, r.transmit), [], 'not due before interval × (1 - jitter)');
  t.deepEqual(c.tick(1_960, r.transmit), []);
  const down = c.receive(0x12n, 5, answer(target, r, TcpFlag.RST | TcpFlag.ACK), 1_970, r.transmit);
  t.like(down, [{ state: 'down', reason: 'refused: RST to SYN', at: 1_970 }]);
});

test('HTTP check: handshake, GET path HTTP/1.0, the status line compared with expectStatus, then RST', (t) => {
  const [web1] = targetsOf();
  const c = checker([web1!]);
  const r = recorder();
  c.tick(0, r.transmit);
  const syn = r.last().tcp;
  t.deepEqual(c.receive(0x11n, 5, answer(web1!, r, TcpFlag.SYN | TcpFlag.ACK, { seq: 5000 }), 1, r.transmit), []);
  const get = r.last();
  t.like(get.tcp, { flags: TcpFlag.ACK | TcpFlag.PSH, seq: (syn.seq + 1) >>> 0, ack: 5001, dstPort: 8080 });
  t.regex(get.data!.toString(), /^GET \/healthz HTTP\/1\.0\r\nHost: 10\.1\.1\.11\r\n.*\r\n\r\n$/s);
  const sentBefore = r.sent.length;
  t.deepEqual(c.receive(0x11n, 5, answer(web1!, r, TcpFlag.ACK, { seq: 5001, ackOffset: 0 }), 2, r.transmit), [], 'a bare ACK: still waiting');
  t.is(r.sent.length, sentBefore);
  t.deepEqual(c.receive(0x11n, 5, answer(web1!, r, TcpFlag.ACK | TcpFlag.PSH, { seq: 5001, data: 'HTTP/1.0 20', ackOffset: 0 }), 3, r.transmit), [], 'status split over two segments');
  t.is(c.receive(0x11n, 5, answer(web1!, r, TcpFlag.ACK | TcpFlag.PSH, { seq: 5001, data: 'HTTP/1.0 20', ackOffset: 0 }), 4, r.transmit), 'out_of_order', 'a retransmission');
  t.deepEqual(c.receive(0x11n, 5, answer(web1!, r, TcpFlag.ACK | TcpFlag.PSH | TcpFlag.FIN, { seq: 5012, data: '0 OK\r\nServer: x\r\n\r\n', ackOffset: 0 }), 5, r.transmit), [], 'one success of rise 2');
  t.like(r.last().tcp, { flags: TcpFlag.RST, seq: (get.tcp.seq + get.data!.length) >>> 0 });
  t.is(c.checksInFlight, 0);
  c.tick(1_000, r.transmit);
  c.receive(0x11n, 5, answer(web1!, r, TcpFlag.SYN | TcpFlag.ACK, { seq: 9000 }), 1_001, r.transmit);
  t.like(c.receive(0x11n, 5, answer(web1!, r, TcpFlag.ACK | TcpFlag.PSH, { seq: 9001, data: 'HTTP/1.1 200 OK\r\n', ackOffset: 0 }), 1_002, r.transmit), [{ state: 'up', port: 'web1', loadBalancer: 'web-lb' }]);
});

test('HTTP check: another status, a reset or a close before the status line, and silence each fail with their reason', (t) => {
  const [web1] = targetsOf();
  const cases: [string, (c: BackendChecker, r: ReturnType<typeof recorder>) => unknown][] = [
    ['HTTP status 500, expected 200', (c, r) => c.receive(0x11n, 5, answer(web1!, r, TcpFlag.ACK, { seq: 1, data: 'HTTP/1.0 500 Internal Server Error\r\n', ackOffset: 0 }), 2, r.transmit)],
    ['reset before an HTTP status line', (c, r) => c.receive(0x11n, 5, answer(web1!, r, TcpFlag.RST, { seq: 1, ackOffset: 0 }), 2, r.transmit)],
    ['closed before an HTTP status line', (c, r) => c.receive(0x11n, 5, answer(web1!, r, TcpFlag.FIN | TcpFlag.ACK, { seq: 1, data: 'nonsense', ackOffset: 0 }), 2, r.transmit)],
    ['no HTTP status line', (c, r) => c.receive(0x11n, 5, answer(web1!, r, TcpFlag.ACK, { seq: 1, data: 'x'.repeat(100), ackOffset: 0 }), 2, r.transmit)],
    ['timeout: no HTTP status line', (c, r) => c.tick(1_000, r.transmit)],
  ];
  for (const [reason, fail] of cases) {
    const c = checker([{ ...web1!, check: { ...web1!.check, fall: 1 } }]);
    const r = recorder();
    c.tick(0, r.transmit);
    c.receive(0x11n, 5, answer(web1!, r, TcpFlag.SYN | TcpFlag.ACK, { seq: 0 }), 1, r.transmit);
    const transitions = fail(c, r) as BackendHealth[];
    t.like(transitions, [{ state: 'down', reason }], reason);
  }
});

test('statusOf reads the status code of a status line, and nothing else', (t) => {
  t.is(statusOf(Buffer.from('HTTP/1.1 204 No Content\r\n')), 204);
  t.is(statusOf(Buffer.from('HTTP/1.0 200\r\n')), 200);
  t.is(statusOf(Buffer.from('HTTP/1.0 20')), undefined);
  t.is(statusOf(Buffer.from('SSH-2.0-OpenSSH')), undefined);
});

// ---- timing and bounds ----

test('silence: each check times out; down after fall checks, within interval × fall + timeout of the last answer', (t) => {
  const [web1] = targetsOf();
  const c = checker([web1!]);
  const r = recorder();
  const transitions: BackendHealth[] = [];
  for (let now = 0; now <= 10_000 && !transitions.length; now += 20) transitions.push(...c.tick(now, r.transmit));
  t.like(transitions, [{ state: 'down', reason: 'timeout: no answer to SYN' }]);
  t.is(r.sent.length, 4, 'the fourth SYN goes out as the third times out');
  t.true(transitions[0]!.at <= 3 * 1_000 + 20, `down at ${transitions[0]!.at} ms`);
});

test('sub-second timeout: a backend silent from any moment is down within interval × fall + timeout + a tick, under the issue\'s interval × fall + 0.5 s', (t) => {
  // the recommended settings (docs/load-balancers.md): interval 1 s, timeout 0.3 s, fall 2
  const check = { intervalSeconds: 1, timeoutSeconds: 0.3, rise: 1, fall: 2 };
  const target = targetsOf(model(modelDoc({ tcp: check }))).find((x) => x.key === 'blue/tcp-lb/web2')!;
  t.is(target.check.timeoutSeconds, 0.3);
  let seed = 12345;
  // deterministic jitter: a linear congruential generator
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const worst: number[] = [];
  for (let silentAt = 3_000; silentAt < 4_000; silentAt += 37) {
    const c = new BackendChecker(random);
    c.setTargets([target], 0);
    c.switchUp(target.dpid);
    const r = recorder();
    let down: BackendHealth | undefined;
    for (let now = 0; now <= 10_000 && !down; now += 20) {
      const sent = r.sent.length;
      down = c.tick(now, r.transmit).find((h) => h.state === 'down');
      // the VM answers at once while it is alive
      if (r.sent.length > sent && now < silentAt) c.receive(target.dpid, 5, answer(target, r, TcpFlag.SYN | TcpFlag.ACK), now, r.transmit);
    }
    t.like(down, { reason: 'timeout: no answer to SYN' });
    worst.push(down!.at - silentAt);
  }
  const bound = check.intervalSeconds * 1000 * check.fall + check.timeoutSeconds * 1000 + 20;
  t.log(`silent → down: ${Math.min(...worst)}..${Math.max(...worst)} ms over ${worst.length} moments (bound ${bound} ms)`);
  t.true(Math.max(...worst) <= bound, `at most ${bound} ms`);
  t.true(bound <= check.intervalSeconds * 1000 * check.fall + 500 - 150, "leaves the issue's bound 150 ms for the group change to reach the switches");
});

test('jitter: backends with one interval start spread over it, and each is checked again within 0.9 to 1 interval', (t) => {
  const m = model();
  const many = Array.from({ length: 50 }, (_, i) => ({ ...targetsOf(m)[0]!, key: `blue/web-lb/b${i}`, port: `b${i}`, tcpPort: 10_000 + i }));
  const c = new BackendChecker();
  c.setTargets(many, 0);
  c.switchUp(0x11n);
  const sentAt = new Map<number, number[]>();
  for (let now = 0; now <= 5_000; now += 10) {
    c.tick(now, (_dpid, _ofport, frame) => {
      const port = findLayer(parsePacket(frame), 'tcp')!.dstPort;
      sentAt.set(port, [...(sentAt.get(port) ?? []), now]);
      return true;
    });
  }
  t.is(sentAt.size, 50);
  const firsts = new Set([...sentAt.values()].map((times) => times[0]!));
  t.true(firsts.size > 25, `first checks at ${firsts.size} distinct times`);
  t.true([...firsts].every((at) => at <= 1_000));
  const gaps = [...sentAt.values()].flatMap((times) => times.slice(1).map((at, i) => at - times[i]!));
  t.true(Math.max(...gaps) <= 1_000, `longest gap ${Math.max(...gaps)} ms`);
  t.true(Math.min(...gaps) >= 900, `shortest gap ${Math.min(...gaps)} ms`);
});

test('bounds: at most MAX_CHECKS_IN_FLIGHT checks in flight; a check takes at most MAX_PACKET_INS_PER_CHECK packets', (t) => {
  const [web1] = targetsOf();
  const many = Array.from({ length: MAX_CHECKS_IN_FLIGHT + 100 }, (_, i) => ({ ...web1!, key: `blue/web-lb/b${i}`, port: `b${i}` }));
  const c = checker(many);
  const r = recorder();
  c.tick(0, r.transmit);
  t.is(c.checksInFlight, MAX_CHECKS_IN_FLIGHT);
  t.is(r.sent.length, MAX_CHECKS_IN_FLIGHT);

  const one = checker([{ ...web1!, check: { ...web1!.check, fall: 1 } }]);
  const r1 = recorder();
  one.tick(0, r1.transmit);
  one.receive(0x11n, 5, answer(web1!, r1, TcpFlag.SYN | TcpFlag.ACK, { seq: 0 }), 1, r1.transmit);
  const bare = answer(web1!, r1, TcpFlag.ACK, { seq: 1, ackOffset: 0 });
  for (let i = 1; i < MAX_PACKET_INS_PER_CHECK; i++) t.deepEqual(one.receive(0x11n, 5, bare, 2, r1.transmit), []);
  t.like(one.receive(0x11n, 5, bare, 3, r1.transmit), [{ state: 'down', reason: `more than ${MAX_PACKET_INS_PER_CHECK} packets without an answer` }]);
  t.like(r1.last().tcp, { flags: TcpFlag.RST });
  t.is(one.receive(0x11n, 5, bare, 4, r1.transmit), 'no_check', 'the rest is ignored');
});

test('packets not of a check: another port, another switch, not TCP', (t) => {
  const [web1] = targetsOf();
  const c = checker([web1!]);
  const r = recorder();
  c.tick(0, r.transmit);
  const synAck = answer(web1!, r, TcpFlag.SYN | TcpFlag.ACK);
  t.is(c.receive(0x11n, 6, synAck, 1, r.transmit), 'wrong_port');
  t.is(c.receive(0x12n, 5, synAck, 1, r.transmit), 'wrong_port');
  t.is(c.receive(0x11n, 5, parsePacket(buildPacket([{ type: 'ethernet', dst: web1!.sourceMac, src: web1!.vmMac }, { type: 'ipv4', src: web1!.vmIp, dst: web1!.sourceIp }, { type: 'udp', srcPort: 1, dstPort: 2 }])), 1, r.transmit), 'not_tcp');
  t.is(c.checksInFlight, 1, 'the check still waits for its answer');
});

test('mastership and placement: an unsent check is no sample; a lost switch or an unplugged port counts as a failure; a switch never seen is not judged', (t) => {
  const targets = targetsOf(model(), ['web2']);
  const web1 = { ...targets[0]!, check: { ...targets[0]!.check, type: 'tcp' as const } };
  const web2 = targets[1]!;
  const c = new BackendChecker(() => 0);
  c.setTargets([web1, web2], 0);
  c.switchUp(0x11n);
  const r = recorder();
  r.ok = false; // a slave: ctx.send refuses
  for (let now = 0; now < 10_000; now += 500) t.deepEqual(c.tick(now, r.transmit), []);
  t.is(c.checksInFlight, 0);
  // mastership lost in the middle of an HTTP check: the request does not go, and the check is no sample either
  const http = checker([targets[0]!]);
  const r2 = recorder();
  http.tick(0, r2.transmit);
  r2.ok = false;
  t.deepEqual(http.receive(0x11n, 5, answer(targets[0]!, r2, TcpFlag.SYN | TcpFlag.ACK), 1, r2.transmit), []);
  t.is(http.checksInFlight, 0);
  r2.ok = true;
  t.is(http.receive(0x11n, 5, answer(targets[0]!, r2, TcpFlag.SYN | TcpFlag.ACK), 2, r2.transmit), 'no_check');
  r.ok = true;
  c.switchUp(0x12n);
  const unplugged: BackendHealth[] = [];
  for (let now = 10_000; now < 13_500; now += 500) {
    unplugged.push(...c.tick(now, r.transmit));
    // web1 answers its checks: only web2 goes down
    if (c.checksInFlight) unplugged.push(...(c.receive(0x11n, 5, answer(web1, r, TcpFlag.SYN | TcpFlag.ACK), now, r.transmit) as BackendHealth[]));
  }
  t.deepEqual(unplugged.map((h) => [h.port, h.state, h.reason]), [['web1', 'up', undefined], ['web2', 'down', 'port web2 not plugged in']]);
  c.switchDown(0x11n);
  const lost: BackendHealth[] = [];
  for (let now = 13_500; now < 17_000; now += 500) lost.push(...c.tick(now, r.transmit));
  t.deepEqual(lost.map((h) => [h.port, h.state, h.reason]), [['web1', 'down', 'hypervisor hv1 disconnected']]);
});

test('a new model keeps an unchanged backend\'s counts, a moved backend\'s state, and forgets a dropped one', (t) => {
  const tcp = targetsOf().find((x) => x.key === 'blue/tcp-lb/web2')!;
  const c = checker([tcp]);
  const r = recorder();
  c.tick(0, r.transmit);
  t.like(c.receive(0x12n, 5, answer(tcp, r, TcpFlag.SYN | TcpFlag.ACK), 1, r.transmit), [{ state: 'up' }]);
  c.setTargets([{ ...tcp, ofport: 9 }], 2);
  t.deepEqual(c.tick(2, r.transmit), []);
  t.like(r.sent.at(-1), { ofport: 9 });
  t.deepEqual(c.receive(0x12n, 9, answer(tcp, r, TcpFlag.SYN | TcpFlag.ACK), 3, r.transmit), [], 'still up: no transition');
  c.setTargets([], 4);
  t.deepEqual(c.tick(10_000, r.transmit), []);
  t.is(c.checksInFlight, 0);
});

// ---- the app on fake switches ----

test('the app on fake switches: check flows on the backends\' switches, SYNs as PACKET_OUTs, answers make backends up on BACKEND_HEALTH, RSTs down', async (t) => {
  const store = new TestModelStore(modelDoc({ http: { intervalSeconds: 1, rise: 1, fall: 1 } }));
  const apps = await runApps({ apps: { 'lb-health': LbHealthApp }, model: store, bindServices: bindAppServices });
  t.teardown(() => apps.stop());
  const board: BackendHealthBoard = apps.runtime.container.get(BACKEND_HEALTH);
  t.true(board.active);
  const switches = [1, 2].map((n) => new FakeSwitch({ dpid: BigInt(0x10 + n), ports: [fakePort(5, `web${n}`)] }));
  t.teardown(() => Promise.all(switches.map((s) => s.close())));
  const tableId = apps.runtime.pipeline.table(CHECK_TABLE).id;
  const events = firstValueFrom(board.health$.pipe(take(3), toArray(), timeout(10_000)));
  for (const sw of switches) t.like(await apps.connect(sw), { errors: 0 });
  t.is(switches[0]!.flowTable.flows().filter((f) => f.tableId === tableId && f.priority === 100).length, 1);
  t.is(switches[1]!.flowTable.flows().filter((f) => f.tableId === tableId && f.priority === 100).length, 2);

  // the VMs, until the three transitions came: web1 answers (a status 200 for HTTP), web2 refuses
  const targets = targetsOf(store.current());
  let done = false;
  const packetIn = (sw: FakeSwitch, data: Buffer) => sw.send({ type: 'PACKET_IN', xid: 0, bufferId: 0xffffffff, totalLen: data.length, reason: 1, tableId, cookie: 0n, match: [{ field: 'in_port', value: 5 }], data });
  /** plays a VM behind port 5: reads every PACKET_OUT the switch got and answers SYNs (and HTTP requests when it accepts) */
  const vm = async (sw: FakeSwitch, accept: boolean) => {
    for (let read = 0; !done; await new Promise((resolve) => setTimeout(resolve, 10))) {
      for (const out of sw.received.slice(read).filter((m): m is PacketOut => m.type === 'PACKET_OUT')) {
        t.deepEqual(out.actions, [{ type: 'output', port: 5, maxLen: 0 }]);
        const p = parsePacket(out.data);
        const ours = findLayer(p, 'tcp')!;
        const target = targets.find((x) => x.dpid === sw.dpid && x.tcpPort === ours.dstPort)!;
        const segment = (seq: number, flags: number, data?: string) =>
          buildPacket([
            { type: 'ethernet', dst: target.sourceMac, src: target.vmMac },
            { type: 'ipv4', src: target.vmIp, dst: target.sourceIp },
            { type: 'tcp', srcPort: ours.dstPort, dstPort: ours.srcPort, seq, ack: (ours.seq + 1) >>> 0, flags },
            ...(data ? [{ type: 'raw' as const, data: Buffer.from(data) }] : []),
          ]);
        if (ours.flags === TcpFlag.SYN) packetIn(sw, segment(77, accept ? TcpFlag.SYN | TcpFlag.ACK : TcpFlag.RST | TcpFlag.ACK));
        else if (findLayer(p, 'raw')) packetIn(sw, segment(78, TcpFlag.ACK | TcpFlag.PSH, 'HTTP/1.0 200 OK\r\n\r\n'));
      }
      read = sw.received.length;
    }
  };
  const vms = Promise.all([vm(switches[0]!, true), vm(switches[1]!, false)]);
  const seen = await events;
  done = true;
  await vms;
  const states = ['tcp-lb/web2 down', 'web-lb/web1 up', 'web-lb/web2 down'];
  t.deepEqual(seen.map((h) => `${h.loadBalancer}/${h.port} ${h.state}`).sort(), states);
  t.deepEqual(board.snapshot().map((h) => `${h.loadBalancer}/${h.port} ${h.state}`).sort(), states);

  // the model drops the checks: their flows go, and the snapshot forgets them
  const doc = modelDoc();
  for (const lb of doc.vpcs[0]!.loadBalancers) delete (lb as { healthCheck?: unknown }).healthCheck;
  const resynced = firstValueFrom(apps.runtime.reconciler.synced$.pipe(filter((r) => r.dpid === 0x12n), take(1), timeout(5_000)));
  t.true(store.setDocument(doc));
  t.like(await resynced, { adds: 0, errors: 0 });
  for (const sw of switches) t.deepEqual(sw.flowTable.flows().filter((f) => f.tableId === tableId && f.priority === 100), [], `0x${sw.dpid.toString(16)}`);
  t.deepEqual(board.snapshot(), []);
});
