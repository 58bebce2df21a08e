/**
 * The demo's load-balancer section (issue 12, docs/load-balancers.md), on the model's own load
 * balancers and VMs: every backend VM serves its name (test/helpers/name-servers.ts, left running
 * until `npm run demo -- down`); clients, one per zone, make new connections to a VIP without
 * affinity (the split per backend) and to a zone-affine one (how many stayed in the client's zone);
 * then, under a client's steady load, one backend's server is stopped and started again (the
 * failover: how long until it was out of rotation, the failed requests, how long until it served
 * again). Each part is a Verdict that scripts/overlay-demo.ts prints and counts.
 */
import { readFileSync } from 'node:fs';
import type { LoadBalancer, NetworkModel, VmPort } from '../src/model';
import { allowed, waitFor, type OverlayScenario } from '../test/helpers/overlay';
import { listenerPid, newConnections, startLoad, startNameServer, type NewRequest } from '../test/helpers/name-servers';
import type { Picked, Verdict } from './overlay-demo';

/** new connections per client, for the split and for zone affinity: a few seconds, and ±20 % is 2.8 standard deviations for two backends */
export const LB_REQUESTS = 100;
/** the failover's client: new connections a second, each given up after 1 s */
const FAILOVER_RATE = 50;
const FAILOVER_CLIENT_TIMEOUT_MS = 1000;
/** a backend's share may be off by this much (issue 12) */
export const SPLIT_TOLERANCE = 0.2;

// ---- picks, from the model ----

const zoneOf = (model: NetworkModel, p: VmPort) => model.hypervisors.find((h) => h.name === p.hypervisor)!.zone;
const portOf = (model: NetworkModel, name: string) => model.ports.find((p) => p.name === name)!;
const targetPort = (lb: LoadBalancer, b: LoadBalancer['backends'][number]) => b.targetPort ?? lb.ports[0]!;
/** the backends that take connections */
const weighted = (lb: LoadBalancer) => lb.backends.filter((b) => b.weight > 0);
/** a TCP VIP without client-IP affinity: every new connection is picked afresh */
const perConnection = (lb: LoadBalancer) => lb.protocol === 'tcp' && lb.sessionAffinity === undefined;

/** The VMs of the load balancer's VPC that the ACLs let reach every backend (and that are none), the first of each zone. */
function clientsOf(model: NetworkModel, lb: LoadBalancer): VmPort[] {
  const backends = new Set(lb.backends.map((b) => b.port));
  const byZone = new Map<string, VmPort>();
  for (const p of model.ports) {
    if (p.vpc !== lb.vpc || p.ip === undefined || backends.has(p.name) || byZone.has(zoneOf(model, p))) continue;
    if (weighted(lb).every((b) => allowed(model, p, portOf(model, b.port), 'tcp', targetPort(lb, b)))) byZone.set(zoneOf(model, p), p);
  }
  return [...byZone.values()];
}

export interface LbPick {
  lb: LoadBalancer;
  /** one per zone */
  clients: VmPort[];
}

/** A VIP without affinity whose backends are in two zones or more, and its clients. */
export function pickSplit(model: NetworkModel): Picked<LbPick> {
  for (const lb of model.loadBalancers.filter((x) => perConnection(x) && !x.zoneAffinity)) {
    const zones = new Set(weighted(lb).map((b) => zoneOf(model, portOf(model, b.port))));
    const clients = clientsOf(model, lb);
    if (zones.size >= 2 && clients.length > 0) return { pick: { lb, clients } };
  }
  return { skipped: 'skipped: no TCP load balancer without affinity has backends in two zones and a client the ACLs let reach them' };
}

/** A zone-affine VIP and its clients in zones that have a backend of it. */
export function pickZoneAffinity(model: NetworkModel): Picked<LbPick> {
  for (const lb of model.loadBalancers.filter((x) => perConnection(x) && x.zoneAffinity)) {
    const zones = new Set(weighted(lb).map((b) => zoneOf(model, portOf(model, b.port))));
    const clients = clientsOf(model, lb).filter((c) => zones.has(zoneOf(model, c)));
    if (clients.length > 0) return { pick: { lb, clients } };
  }
  return { skipped: 'skipped: no TCP load balancer with zone affinity has a client in a zone of its backends' };
}

export interface FailoverPick {
  lb: LoadBalancer;
  client: VmPort;
  /** the backend whose server is stopped: in the client's zone, so that with zone affinity the client fails over across zones */
  victim: string;
}

/** A health-checked VIP with two backends or more, preferably zone-affine, a client and the backend to stop. */
export function pickFailover(model: NetworkModel): Picked<FailoverPick> {
  const checked = model.loadBalancers.filter((x) => perConnection(x) && x.healthCheck !== undefined && weighted(x).length >= 2);
  for (const lb of [...checked.filter((x) => x.zoneAffinity), ...checked.filter((x) => !x.zoneAffinity)]) {
    const [client] = clientsOf(model, lb);
    if (!client) continue;
    const victim = weighted(lb).find((b) => zoneOf(model, portOf(model, b.port)) === zoneOf(model, client)) ?? weighted(lb)[0]!;
    return { pick: { lb, client, victim: victim.port } };
  }
  return { skipped: 'skipped: no health-checked TCP load balancer has two backends and a client the ACLs let reach them' };
}

// ---- the controller's view: health transitions from its log ----

interface HealthChange {
  time: number;
  vpc: string;
  loadBalancer: string;
  backend: string;
  state: 'up' | 'down';
}

/** every backend health transition the load-balancer app applied, in order */
function healthChanges(logFile: string): HealthChange[] {
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('load-balancer backend health changed'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as HealthChange];
      } catch {
        return []; // a line still being written
      }
    });
}

async function transition(logFile: string, lb: LoadBalancer, backend: string, state: HealthChange['state'], since: number): Promise<number> {
  const found = await waitFor(
    `${lb.name}: ${backend} ${state}`,
    async () => healthChanges(logFile).find((c) => c.vpc === lb.vpc && c.loadBalancer === lb.name && c.backend === backend && c.state === state && c.time >= since),
    (c) => c !== undefined,
    { timeoutMs: 10_000, intervalMs: 50 },
  );
  return found!.time;
}

/**
 * Every health-checked backend in rotation: the load balancer takes a backend as up until lb-health
 * says otherwise and logs only changes, so one is out while its last logged transition is down. (A
 * server that is up at lb-health's first checks is never logged at all; by the time this runs, after
 * the matrices, a server that is not up has had its fall checks and been logged down.)
 */
async function allInRotation(logFile: string, model: NetworkModel): Promise<string[]> {
  const wanted = model.loadBalancers.filter((lb) => lb.healthCheck).flatMap((lb) => weighted(lb).map((b) => ({ lb, backend: b.port })));
  const notUp = () => {
    const last = new Map(healthChanges(logFile).map((c) => [`${c.vpc}/${c.loadBalancer}/${c.backend}`, c.state]));
    return wanted.filter(({ lb, backend }) => last.get(`${lb.vpc}/${lb.name}/${backend}`) === 'down').map(({ lb, backend }) => `${lb.name}/${backend}`);
  };
  return waitFor('every backend in rotation', async () => notUp(), (left) => left.length === 0, { timeoutMs: 15_000, intervalMs: 100 }).catch(() => notUp());
}

// ---- the checks ----

export interface SplitResult {
  lb: string;
  target: string;
  /** per client */
  clients: { client: string; zone: string; served: Record<string, number>; failures: number }[];
  /** per backend, over all clients */
  served: Record<string, number>;
  /** each backend's share of the total by weight */
  expected: Record<string, number>;
}

export interface AffinityResult {
  lb: string;
  target: string;
  clients: { client: string; zone: string; served: Record<string, number>; failures: number; inZone: number }[];
}

export interface FailoverResult {
  lb: string;
  client: string;
  victim: string;
  /** interval × fall + 0.5 s, and interval × rise + 0.5 s (issue 12) */
  downBoundMs: number;
  upBoundMs: number;
  /** from the server's kill to the load balancer applying its removal (the controller's log) */
  outOfRotationMs: number;
  /** new connections started from 1 s before the kill (the client's timeout) that failed */
  failed: number;
  /** when the last of them started, after the kill (0: none) */
  lastFailedMs: number;
  /** failed ones that started before the kill's window or after the bound: none expected */
  failedOutsideBound: number;
  /** who answered between the removal and the restart */
  servedMeanwhile: Record<string, number>;
  /** from the restarted server listening to the first connection it answered */
  backInMs: number;
  requests: number;
}

export interface LbReport {
  verdicts: Verdict[];
  /** the whole section's time */
  elapsedMs: number;
  split?: SplitResult;
  affinity?: AffinityResult;
  failover?: FailoverResult;
}

const passIf = (ok: boolean): Verdict['status'] => (ok ? 'pass' : 'fail');
const counts = (served: Record<string, number>) => Object.entries(served).map(([name, n]) => `${name} ${n}`).join(', ') || 'none';
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const total = (served: Record<string, number>) => Object.values(served).reduce((a, b) => a + b, 0);

function add(into: Record<string, number>, served: Record<string, number>): void {
  for (const [name, n] of Object.entries(served)) into[name] = (into[name] ?? 0) + n;
}

async function splitCheck(scenario: OverlayScenario, model: NetworkModel, { lb, clients }: LbPick): Promise<{ verdict: Verdict; result: SplitResult }> {
  const target = `${lb.vip}:${lb.ports[0]}`;
  const t0 = Date.now();
  const runs = await Promise.all(clients.map((c) => newConnections(scenario, c.name, [target], LB_REQUESTS)));
  const elapsed = seconds(Date.now() - t0);
  const served: Record<string, number> = {};
  runs.forEach((r) => add(served, r.served));
  const weights = weighted(lb).reduce((a, b) => a + b.weight, 0);
  const expected = Object.fromEntries(weighted(lb).map((b) => [b.port, (total(served) * b.weight) / weights]));
  const failures = runs.reduce((a, r) => a + r.failures.length, 0);
  const off = weighted(lb).filter((b) => Math.abs((served[b.port] ?? 0) - expected[b.port]!) > SPLIT_TOLERANCE * expected[b.port]!);
  const strangers = Object.keys(served).filter((name) => !(name in expected));
  const where = (name: string) => {
    const p = portOf(model, name);
    return `${name} (${p.hypervisor}, ${zoneOf(model, p)})`;
  };
  const result: SplitResult = {
    lb: lb.name,
    target,
    clients: clients.map((c, i) => ({ client: c.name, zone: zoneOf(model, c), served: runs[i]!.served, failures: runs[i]!.failures.length })),
    served,
    expected,
  };
  return {
    result,
    verdict: {
      what: `request split: ${lb.name} ${target} (VPC ${lb.vpc}, no affinity): ${clients.map((c) => `${c.name} (${zoneOf(model, c)})`).join(' and ')} ${LB_REQUESTS} new connections each; ${weighted(lb)
        .map((b) => `${where(b.port)} ${served[b.port] ?? 0}`)
        .join(', ')} of ${total(served)}, each within ±${SPLIT_TOLERANCE * 100} % of its share (${weighted(lb).map((b) => Math.round(expected[b.port]!)).join('/')}); ${failures} failed (${elapsed})`,
      status: passIf(failures === 0 && off.length === 0 && strangers.length === 0),
      detail: [
        ...runs.map((r, i) => `${clients[i]!.name} -> ${counts(r.served)}${r.failures.length ? `; failed: ${r.failures.slice(0, 3).join('; ')}` : ''}`),
        ...off.map((b) => `${b.port} served ${served[b.port] ?? 0}, not within ±${SPLIT_TOLERANCE * 100} % of ${Math.round(expected[b.port]!)}`),
        ...strangers.map((name) => `${name} answered, which is no backend of ${lb.name}`),
      ],
    },
  };
}

async function affinityCheck(scenario: OverlayScenario, model: NetworkModel, { lb, clients }: LbPick): Promise<{ verdict: Verdict; result: AffinityResult }> {
  const target = `${lb.vip}:${lb.ports[0]}`;
  const t0 = Date.now();
  const runs = await Promise.all(clients.map((c) => newConnections(scenario, c.name, [target], LB_REQUESTS)));
  const elapsed = seconds(Date.now() - t0);
  const result: AffinityResult = {
    lb: lb.name,
    target,
    clients: clients.map((c, i) => {
      const { served, failures } = runs[i]!;
      const zone = zoneOf(model, c);
      const inZone = Object.entries(served).reduce((a, [name, n]) => a + (model.ports.some((p) => p.name === name && zoneOf(model, p) === zone) ? n : 0), 0);
      return { client: c.name, zone, served, failures: failures.length, inZone };
    }),
  };
  const all = clients.length * LB_REQUESTS;
  const stayed = result.clients.reduce((a, c) => a + c.inZone, 0);
  const failures = result.clients.reduce((a, c) => a + c.failures, 0);
  return {
    result,
    verdict: {
      what: `zone affinity: ${lb.name} ${target}: ${result.clients.map((c) => `${c.client} (${c.zone}) -> ${counts(c.served)}`).join('; ')}: ${stayed} of ${all} (${Math.round((100 * stayed) / all)} %) stayed in the client's zone; ${failures} failed (${elapsed})`,
      status: passIf(stayed === all && failures === 0),
      detail: runs.flatMap((r, i) => r.failures.slice(0, 3).map((f) => `${clients[i]!.name}: ${f}`)),
    },
  };
}

/** Stops the victim's server under a steady load, and starts it again. */
async function failoverCheck(scenario: OverlayScenario, model: NetworkModel, logFile: string, { lb, client, victim }: FailoverPick): Promise<{ verdict: Verdict; result?: FailoverResult }> {
  const check = lb.healthCheck!;
  const downBoundMs = check.intervalSeconds * 1000 * check.fall + 500;
  const upBoundMs = check.intervalSeconds * 1000 * check.rise + 500;
  const port = targetPort(lb, lb.backends.find((b) => b.port === victim)!);
  const target = `${lb.vip}:${lb.ports[0]}`;
  const load = startLoad(scenario, client.name, target, { rate: FAILOVER_RATE, held: 0 });
  const servedBy = (since: number) => waitFor(`${victim} serving`, async () => load.newRequests().find((r) => r.served === victim && r.at >= since), (r) => r !== undefined, { timeoutMs: 10_000, intervalMs: 50 });
  const t0 = Date.now();
  const what = `failover: ${client.name} (${zoneOf(model, client)}) -> ${lb.name} ${target} at ${FAILOVER_RATE} new connections/s; ${victim}'s server stopped (SIGKILL), then started again`;
  try {
    await servedBy(0);
    const pid = await listenerPid(scenario, victim, port);
    if (pid === undefined) throw new Error(`nothing listens on ${victim}:${port}`);
    const stoppedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    const outOfRotationMs = (await transition(logFile, lb, victim, 'down', stoppedAt)) - stoppedAt;
    // half a second of requests after the removal: all of them answered by the others
    await waitFor('requests after the removal', async () => load.newRequests().some((r) => r.at > stoppedAt + outOfRotationMs + 500), (done) => done, { timeoutMs: 10_000, intervalMs: 50 });
    const { listeningAt } = await startNameServer(scenario, victim, port, { detached: true });
    const backInMs = (await servedBy(listeningAt))!.at - listeningAt;
    await load.stop();

    const requests = load.newRequests();
    const failedReqs = requests.filter((r) => r.error !== undefined && r.at >= stoppedAt - FAILOVER_CLIENT_TIMEOUT_MS);
    const outside = requests.filter((r) => r.error !== undefined && (r.at < stoppedAt - FAILOVER_CLIENT_TIMEOUT_MS || r.at > stoppedAt + downBoundMs));
    const servedMeanwhile: Record<string, number> = {};
    for (const r of requests.filter((x): x is NewRequest & { served: string } => x.served !== undefined && x.at > stoppedAt + outOfRotationMs && x.at < listeningAt)) add(servedMeanwhile, { [r.served]: 1 });
    const result: FailoverResult = {
      lb: lb.name,
      client: client.name,
      victim,
      downBoundMs,
      upBoundMs,
      outOfRotationMs,
      failed: failedReqs.length,
      lastFailedMs: failedReqs.length ? Math.round(Math.max(...failedReqs.map((r) => r.at)) - stoppedAt) : 0,
      failedOutsideBound: outside.length,
      servedMeanwhile,
      backInMs: Math.round(backInMs),
      requests: requests.length,
    };
    const zones = Object.entries(servedMeanwhile).map(([name, n]) => `${name} (${zoneOf(model, portOf(model, name))}) ${n}`);
    return {
      result,
      verdict: {
        what: `${what}: out of rotation ${outOfRotationMs} ms after the stop (the load balancer's log; bound ${downBoundMs} ms = interval ${check.intervalSeconds} s × fall ${check.fall} + 0.5 s); ${result.failed} requests failed, the last started ${result.lastFailedMs} ms after the stop, ${outside.length} outside the bound; meanwhile answered by ${zones.join(', ') || 'nobody'}; back in rotation ${result.backInMs} ms after its server listened again (bound ${upBoundMs} ms = interval × rise ${check.rise} + 0.5 s); ${requests.length} requests in all (${seconds(Date.now() - t0)})`,
        status: passIf(outOfRotationMs <= downBoundMs && outside.length === 0 && !(victim in servedMeanwhile) && total(servedMeanwhile) > 0 && backInMs <= upBoundMs),
        detail: outside.slice(0, 5).map((r) => `failed ${Math.round(r.at - stoppedAt)} ms after the stop: ${r.error}`),
      },
    };
  } catch (e) {
    return { verdict: { what, status: 'fail', detail: [(e as Error).message, ...(load.stderr ? [load.stderr.slice(-500)] : [])] } };
  } finally {
    await load.stop();
    // the scenario as it was, whatever happened
    if ((await listenerPid(scenario, victim, port)) === undefined) await startNameServer(scenario, victim, port, { detached: true });
  }
}

/**
 * The load-balancer section: backends' servers started where missing, then the split, zone
 * affinity and (with `failover`) the failover, each a verdict or skipped with the reason.
 */
export async function loadBalancerChecks(scenario: OverlayScenario, model: NetworkModel, opts: { logFile: string; failover: boolean }): Promise<LbReport> {
  const t0 = Date.now();
  const report = await sections(scenario, model, opts);
  return { ...report, elapsedMs: Date.now() - t0 };
}

/**
 * Starts a server answering its name in every backend VM, on its target port, where none listens
 * yet; returns them as `vm:port`. They keep running after this process: the scenario's teardown
 * stops them. The demo starts them once the VMs have their addresses, so that the health checks
 * have them in rotation by the time the load-balancer checks run.
 */
export async function startBackendServers(scenario: OverlayScenario, model: NetworkModel): Promise<{ servers: string[]; started: string[] }> {
  const servers = new Map(model.loadBalancers.flatMap((lb) => weighted(lb).map((b) => [`${b.port}:${targetPort(lb, b)}`, { vm: b.port, port: targetPort(lb, b) }])));
  const started: string[] = [];
  for (const [name, { vm, port }] of servers) {
    if ((await listenerPid(scenario, vm, port)) !== undefined) continue;
    await startNameServer(scenario, vm, port, { detached: true });
    started.push(name);
  }
  return { servers: [...servers.keys()], started };
}

async function sections(scenario: OverlayScenario, model: NetworkModel, opts: { logFile: string; failover: boolean }): Promise<Omit<LbReport, 'elapsedMs'>> {
  if (model.loadBalancers.length === 0) return { verdicts: [{ what: 'load balancers: skipped: the model has none', status: 'skip', detail: [] }] };
  const t0 = Date.now();
  const { servers, started } = await startBackendServers(scenario, model);
  const notUp = await allInRotation(opts.logFile, model);
  const report: Omit<LbReport, 'elapsedMs'> = {
    verdicts: [
      {
        what: `backends: a server answering its name listens in each backend VM (${servers.map((x) => (started.includes(x) ? `${x}, started now` : x)).join('; ')}); ${notUp.length ? `not in rotation: ${notUp.join(', ')}` : `every health-checked backend in rotation (waited ${seconds(Date.now() - t0)})`}`,
        status: passIf(notUp.length === 0),
        detail: [],
      },
    ],
  };
  const split = pickSplit(model);
  const affinity = pickZoneAffinity(model);
  // at once: two VIPs, each client's connections one after the other
  const [splitRun, affinityRun] = await Promise.all(['pick' in split ? splitCheck(scenario, model, split.pick) : undefined, 'pick' in affinity ? affinityCheck(scenario, model, affinity.pick) : undefined]);
  if ('skipped' in split) report.verdicts.push({ what: `request split: ${split.skipped}`, status: 'skip', detail: [] });
  else {
    report.verdicts.push(splitRun!.verdict);
    report.split = splitRun!.result;
  }
  if ('skipped' in affinity) report.verdicts.push({ what: `zone affinity: ${affinity.skipped}`, status: 'skip', detail: [] });
  else {
    report.verdicts.push(affinityRun!.verdict);
    report.affinity = affinityRun!.result;
  }
  if (!opts.failover) return report;
  const failover = pickFailover(model);
  if ('skipped' in failover) report.verdicts.push({ what: `failover: ${failover.skipped}`, status: 'skip', detail: [] });
  else {
    const { verdict, result } = await failoverCheck(scenario, model, opts.logFile, failover.pick);
    report.verdicts.push(verdict);
    if (result) report.failover = result;
  }
  return report;
}
