/**
 * Requests per second through a load balancer's VIP against direct requests to its backends, in the
 * same run (issue 12): the Mininet scenario of models/load-balancer.yaml on Open vSwitch (userspace
 * datapath), the controller running the overlay apps, lb-health and load-balancer. Client-a (hv1)
 * opens new connections one after the other, one HTTP request each, in rounds: to the spread VIP
 * (four backends, two per zone, one on hv1); to the same four backends directly, in turn; to one
 * backend directly (app-b1, on hv3 in the other zone). A ratio, since the userspace datapath and the
 * Python client bound the absolute numbers.
 *
 *   npx tsc -p . && npm run bench:lb     # -- --requests 300 --rounds 3 --prefix zmlr
 */
import { cpus, loadavg } from 'node:os';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { loadModelFile } from '../src/model';
import { newConnections, startNameServer } from '../test/helpers/name-servers';
import { OVERLAY_APPS, type OverlayScenario, type RunningController, overlayDown, overlayUp, startController } from '../test/helpers/overlay';
import { REPO_ROOT } from '../test/helpers/paths';
import { TEST_STATE_DIR } from '../test/helpers/run';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '300' }, rounds: { type: 'string', default: '3' }, prefix: { type: 'string', default: 'zmlr' } } });
const REQUESTS = Number(values.requests);
const ROUNDS = Number(values.rounds);
const PREFIX = values.prefix;
const STATE = join(TEST_STATE_DIR, 'lb-bench');
const MODEL = join(STATE, 'model.yaml');
const CLIENT = 'client-a';
const BACKEND_PORT = 8080;

let scenario: OverlayScenario | undefined;
let controller: RunningController | undefined;
const servers: ChildProcess[] = [];

async function teardown(): Promise<void> {
  for (const s of servers) s.kill('SIGKILL');
  await controller?.stop();
  await (scenario?.down() ?? overlayDown(join(STATE, 'net'), PREFIX));
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void teardown().finally(() => process.exit(130)));

const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  console.log(`# VIP against direct requests (node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}), load average ${load()} before the scenario`);
  mkdirSync(STATE, { recursive: true });
  copyFileSync(join(REPO_ROOT, 'models', 'load-balancer.yaml'), MODEL);
  const model = loadModelFile(MODEL);
  const spread = model.loadBalancers.find((lb) => lb.vpc === 'blue' && lb.name === 'spread')!;
  const ipOf = (port: string) => model.ports.find((p) => p.name === port)!.ip;
  scenario = await overlayUp(MODEL, { stateDir: join(STATE, 'net'), prefix: PREFIX });
  for (const b of spread.backends) servers.push((await startNameServer(scenario, b.port, BACKEND_PORT)).process);
  controller = await startController(MODEL, scenario.hypervisorsJson, { apps: [...OVERLAY_APPS, 'lb-health', 'load-balancer'] });

  const kinds = {
    [`VIP ${spread.vip}:${spread.ports[0]} (4 backends)`]: [`${spread.vip}:${spread.ports[0]}`],
    'the same 4 backends directly, in turn': spread.backends.map((b) => `${ipOf(b.port)}:${BACKEND_PORT}`),
    'one backend directly (app-b1, other zone)': [`${ipOf('app-b1')}:${BACKEND_PORT}`],
  };
  // one round unmeasured: ARP, first flows, the checks' first decisions
  for (const targets of Object.values(kinds)) await newConnections(scenario, CLIENT, targets, 50);
  const rates = new Map<string, number[]>(Object.keys(kinds).map((k) => [k, []]));
  console.log(`scenario up; ${ROUNDS} rounds of ${REQUESTS} new connections per kind from ${CLIENT}, sequential; load average ${load()}`);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [kind, targets] of Object.entries(kinds)) {
      const r = await newConnections(scenario, CLIENT, targets, REQUESTS);
      if (r.failures.length) throw new Error(`${kind}: ${r.failures.length} failed: ${r.failures[0]}`);
      rates.get(kind)!.push(REQUESTS / r.seconds);
    }
  }
  const vip = median(rates.get(Object.keys(kinds)[0]!)!);
  console.log(`load average ${load()} after the last round`);
  console.log('| new connections to | requests/s per round | median | VIP ÷ this |');
  console.log('|---|---|---:|---:|');
  for (const [kind, rs] of rates) console.log(`| ${kind} | ${rs.map((r) => r.toFixed(0)).join(', ')} | ${median(rs).toFixed(0)} | ${(vip / median(rs)).toFixed(2)} |`);
}

main()
  .catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => void teardown());
