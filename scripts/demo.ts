/**
 * `npm run demo` (through scripts/demo.sh, which installs, builds and runs this as root):
 * the multi-zone VPC overlay of a model on real Open vSwitch.
 *
 *   node dist/scripts/demo.js [up] [--model FILE]   scenario up, controller up (left running), checks
 *   node dist/scripts/demo.js check                 the checks again, on the running demo
 *   node dist/scripts/demo.js down                  controller stopped, scenario torn down
 *
 * The scenario is mininet/zonemesh_net.py's (one netns with its own OVS per hypervisor), with the
 * default names (prefix zm, state /tmp/zm/zm) so that its commands work without options. The
 * checks are the ones test/integration/overlay-scenario.test.ts makes, through the same helpers.
 * Exit status: 0 when the ping matrix matches the model and the underlay check passes.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { loadModelFile, type NetworkModel, type VmPort } from '../src/model';
import {
  ZONEMESH_MAIN,
  arpInTunnels,
  deniedInTunnels,
  directPathCheck,
  expectedPing,
  innerFlow,
  matrixMismatches,
  modelPort,
  overlayDown,
  overlayUp,
  readHypervisorsJson,
  startController,
  waitFor,
  OverlayScenario,
  type OverlayState,
  type PingMatrix,
  type PingResult,
  type RunningController,
} from '../test/helpers/overlay';
import { REPO_ROOT } from '../test/helpers/paths';

const PREFIX = 'zm';
const STATE_DIR = process.env.ZM_STATE ?? `/tmp/zm/${PREFIX}`;
const CONTROLLER_DIR = join(STATE_DIR, 'controller');
const PIDFILE = join(CONTROLLER_DIR, 'zonemesh.pid');
const DEFAULT_MODEL = join(REPO_ROOT, 'models', 'two-zones.yaml');
const NET = `/usr/bin/python3 ${relative(process.cwd(), join(REPO_ROOT, 'mininet', 'zonemesh_net.py')) || 'mininet/zonemesh_net.py'}`;

const tty = process.stdout.isTTY;
const paint = (code: number) => (s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const green = paint(32);
const red = paint(31);
const bold = paint(1);
const dim = paint(2);
const say = (line = '') => console.log(line);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

// ---- the controller left running ----

function runningPid(): number | undefined {
  try {
    const pid = Number(readFileSync(PIDFILE, 'utf8').trim());
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('main.js') && cmd.includes('run') ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function stopController(): Promise<number | undefined> {
  const pid = runningPid();
  rmSync(PIDFILE, { force: true }); // its exit handler died with the demo that started it
  if (pid === undefined) return undefined;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 100));
  if (existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGKILL');
  return pid;
}

// ---- the ping matrix, explained ----

function why(model: NetworkModel, r: PingResult): string {
  if (r.target === 'self') return `${r.ip} is ${r.src}'s own address in VPC ${modelPort(model, r.src).vpc}`;
  const [a, b] = [modelPort(model, r.src), modelPort(model, r.target)];
  const alias = r.target !== r.dst ? `${r.ip} is ${r.target} in VPC ${a.vpc} (not ${r.dst}, VPC ${modelPort(model, r.dst).vpc}); ` : '';
  if (a.vpc !== b.vpc) return `${r.ip} is ${b.name}'s address in VPC ${b.vpc}; VPC ${a.vpc} has no such address, and VPCs never reach each other`;
  if (a.subnet === b.subnet) return `${alias}same tier (${a.vpc}/${a.subnet})`;
  const rule = model.acls.find(
    (x) => x.vpc === a.vpc && x.direction === 'ingress' && x.subnet === b.subnet && 'subnet' in x.remote && x.remote.subnet === a.subnet && (x.protocol === 'icmp' || x.protocol === 'any'),
  );
  return `${alias}${a.subnet} -> ${b.subnet}: ${rule ? `ACL ${rule.name} (${rule.action})` : `no ACL rule lets ${a.subnet} ping ${b.subnet}`}`;
}

function printMatrix(model: NetworkModel, m: PingMatrix): boolean {
  const ports = new Map(model.ports.map((p) => [p.name, p]));
  const label = (name: string) => `${name} ${dim(`${ports.get(name)!.vpc}/${ports.get(name)!.subnet}@${ports.get(name)!.hypervisor}`)}`;
  say(bold(`Ping matrix: every VM pings every other VM's IP (${m.count} pings each, ${m.pairs.length} pairs, ${secs(m.elapsedMs)})`));
  say(dim('  expected from the model: VPC, tier, ACL rules (stateful, first match wins); VPCs blue and red share 10.1.1.0/24'));
  const width = Math.max(...m.vms.map((v) => v.length)) + 2;
  say(`  ${'src \\ dst'.padEnd(width)}${m.vms.map((v) => v.padStart(width)).join('')}`);
  const cell = new Map(m.pairs.map((r) => [`${r.src}>${r.dst}`, r]));
  for (const s of m.vms) {
    const row = m.vms.map((d) => {
      const r = cell.get(`${s}>${d}`);
      if (!r) return '·'.padStart(width);
      const want = expectedPing(model, r);
      const text = `${r.target !== r.dst ? '~' : ''}${r.ok ? 'yes' : 'no'}`.padStart(width);
      return r.ok === want ? (r.ok ? green(text) : text) : red(`${text.slice(1)}!`);
    });
    say(`  ${s.padEnd(width)}${row.join('')}`);
  }
  say(dim('  yes/no = got a reply or not, as the model expects; ! = differs from the model; ~ = the IP is another VM\'s (or the source\'s own) in the source\'s VPC'));
  say();
  say(bold('  Per pair: expected / actual / why'));
  for (const r of m.pairs) {
    const want = expectedPing(model, r);
    const verdict = r.ok === want ? green('ok') : red('MISMATCH');
    const line = `  ${label(r.src).padEnd(tty ? 30 : 22)} -> ${r.dst.padEnd(5)} ${r.ip.padEnd(10)} expected ${(want ? 'reach' : 'blocked').padEnd(7)} got ${(r.ok ? `reach ${r.received}/${r.sent}` : `blocked 0/${r.sent}`).padEnd(11)} ${verdict}  ${dim(why(model, r))}`;
    say(line);
  }
  const bad = matrixMismatches(model, m);
  say(bad.length === 0 ? green(`  matrix: all ${m.pairs.length} pairs as the model says`) : red(`  matrix: ${bad.length} pairs differ from the model:\n    ${bad.join('\n    ')}`));
  return bad.length === 0;
}

// ---- the underlay check ----

interface Verdict {
  what: string;
  ok: boolean;
  detail: string[];
}

async function underlayCheck(scenario: OverlayScenario, model: NetworkModel): Promise<Verdict[]> {
  const state: OverlayState = scenario.state();
  const verdicts: Verdict[] = [];
  const hv = (p: VmPort) => `${p.hypervisor} (${state.hypervisors[p.hypervisor]!.zone}, ${state.hypervisors[p.hypervisor]!.tunnelIp})`;

  // 1. a routed cross-zone ping, alone in its capture
  const [src, dst] = pickRoutedCrossZone(model, state);
  const routed = await scenario.startCapture('demo-routed', { filter: 'udp port 6081' });
  const ping = await scenario.ping(src.name, dst.name, 5);
  await routed.stop();
  const direct = directPathCheck(state, model, routed.tunnelFrames(), src.name, dst.name, ping);
  verdicts.push({
    what: `routed cross-zone ping ${src.name} (${src.subnet}) on ${hv(src)} -> ${dst.name} (${dst.subnet}) on ${hv(dst)}: ${ping.received}/${ping.sent} replies; every packet once, straight from hypervisor to hypervisor (no trombone), routed at the source`,
    ok: ping.received === ping.sent && ping.sent > 0 && direct.problems.length === 0,
    detail: [...direct.summary, ...direct.problems],
  });

  // 2 + 3. the whole matrix, neighbour caches flushed first: no ARP in tunnels, no denied ping in tunnels
  for (const vm of Object.keys(state.vms)) await scenario.exec(vm, ['ip', 'neigh', 'flush', 'all']);
  const capture = await scenario.startCapture('demo-matrix', { filter: 'udp port 6081' });
  const m = await scenario.pingMatrix({ count: 2 });
  await capture.stop();
  const frames = capture.tunnelFrames();
  const arp = arpInTunnels(frames);
  verdicts.push({
    what: `no ARP in any tunnel: neighbour caches of all VMs flushed, then the whole matrix again; ${frames.length} Geneve frames decapsulated, ${arp.length} ARP`,
    ok: arp.length === 0 && frames.length > 0,
    detail: arp.slice(0, 5).map((f) => `ARP at ${f.at}: ${f.outerSrc} -> ${f.outerDst}`),
  });
  const deniedPairs = m.pairs.filter((r) => r.target !== 'self' && !expectedPing(model, r) && modelPort(model, r.src).vpc === modelPort(model, r.target).vpc);
  const leaked = deniedInTunnels(model, m, frames);
  verdicts.push({
    what: `denied traffic absent from the underlay: ${deniedPairs.length} denied same-VPC pairs pinged, ${leaked.length} of their echo requests in a tunnel (the ACL drops at the source)`,
    ok: leaked.length === 0 && deniedPairs.length > 0,
    detail: [...leaked.slice(0, 5), ...matrixMismatches(model, m).map((x) => `(this matrix run differed from the model too: ${x})`)],
  });

  // 4. overlapping VPCs: the same IP goes to the owner in the sender's VPC, in that VPC's key
  const clash = pickOverlap(model);
  if (clash) {
    const { from, owner, other } = clash;
    const vpc = model.vpcs.find((v) => v.name === from.vpc)!;
    const cap = await scenario.startCapture('demo-vpcs', { filter: 'udp port 6081' });
    const r = await scenario.ping(from.name, owner.ip, 3);
    await cap.stop();
    const flow = innerFlow(cap.tunnelFrames(), from.ip, owner.ip);
    const wrong = flow.filter((f) => f.vni >>> 12 !== vpc.vni || f.outerDst !== state.hypervisors[owner.hypervisor]!.tunnelIp);
    verdicts.push({
      what: `VPCs stay apart: ${from.name} (${from.vpc}) -> ${owner.ip} reaches ${owner.name} on ${owner.hypervisor}, never ${other.name} (${other.vpc}, same IP, on ${other.hypervisor}); ${flow.length} frames, all in ${from.vpc}'s key 0x${vpc.vni.toString(16)}xxx`,
      ok: r.ok && flow.length > 0 && wrong.length === 0 && !flow.some((f) => f.at === other.hypervisor && other.hypervisor !== owner.hypervisor && other.hypervisor !== from.hypervisor),
      detail: wrong.slice(0, 5).map((f) => `frame at ${f.at} ${f.outerSrc} -> ${f.outerDst} key 0x${f.vni.toString(16)}`),
    });
  }
  return verdicts;
}

/** A pair in different subnets of one VPC, on hypervisors of different zones, that may ping. */
function pickRoutedCrossZone(model: NetworkModel, state: OverlayState): [VmPort, VmPort] {
  const zone = (p: VmPort) => state.hypervisors[p.hypervisor]!.zone;
  for (const a of model.ports) {
    for (const b of model.ports) {
      if (a.vpc === b.vpc && a.subnet !== b.subnet && zone(a) !== zone(b) && expectedPing(model, { src: a.name, dst: b.name, ip: b.ip, target: b.name, sent: 0, received: 0, ok: false })) {
        return [a, b];
      }
    }
  }
  throw new Error('the model has no routed cross-zone pair that may ping');
}

/**
 * A VM of one VPC, the owner of another VM's IP in its own VPC, and that other VM; preferably with
 * the other VM on a third hypervisor, where a frame would show that the VPCs mixed.
 */
function pickOverlap(model: NetworkModel): { from: VmPort; owner: VmPort; other: VmPort } | undefined {
  const found: { from: VmPort; owner: VmPort; other: VmPort }[] = [];
  for (const other of model.ports) {
    for (const from of model.ports) {
      if (from.vpc === other.vpc) continue;
      const owner = model.ports.find((p) => p.vpc === from.vpc && p.ip === other.ip && p.name !== from.name);
      if (owner && owner.hypervisor !== from.hypervisor) found.push({ from, owner, other });
    }
  }
  return found.find((c) => c.other.hypervisor !== c.from.hypervisor && c.other.hypervisor !== c.owner.hypervisor) ?? found[0];
}

function printVerdicts(verdicts: Verdict[]): boolean {
  say(bold('Underlay check: tcpdump on every hypervisor uplink (router namespace), Geneve decapsulated with src/packet'));
  for (const v of verdicts) {
    say(`  ${v.ok ? green('PASS') : red('FAIL')}  ${v.what}`);
    for (const d of v.detail) say(dim(`        ${d}`));
  }
  return verdicts.every((v) => v.ok);
}

// ---- commands ----

async function checks(scenario: OverlayScenario, model: NetworkModel): Promise<boolean> {
  const m = await waitFor('the ping matrix matches the model', () => scenario.pingMatrix({ count: 3 }), (x) => matrixMismatches(model, x).length === 0, {
    timeoutMs: 20_000,
    intervalMs: 1000,
  }).catch(() => scenario.pingMatrix({ count: 3 }));
  say();
  const matrixOk = printMatrix(model, m);
  say();
  const underlayOk = printVerdicts(await underlayCheck(scenario, model));
  say();
  const ok = matrixOk && underlayOk;
  say(ok ? green(bold('Verdict: PASS — the overlay does what the model says')) : red(bold(`Verdict: FAIL — ${[!matrixOk && 'ping matrix', !underlayOk && 'underlay check'].filter(Boolean).join(' and ')}`)));
  return ok;
}

function printRunning(ctl: { pid: number; logFile: string; controlSocket: string; modelFile: string }): void {
  const cli = `node ${relative(process.cwd(), ZONEMESH_MAIN)}`;
  say();
  say(bold('Left running for you to explore'));
  say(`  controller   pid ${ctl.pid}, log ${ctl.logFile}, watching ${relative(process.cwd(), ctl.modelFile) || ctl.modelFile}`);
  say(`  flows        ${cli} flows --control unix:${ctl.controlSocket} ${dim('[--dpid 0x11]')}`);
  say(`  pings        ${NET} pingmatrix   ${dim('|')}   ${NET} exec web1 ping -c3 10.1.2.12`);
  say(`  a hypervisor ${NET} exec hv1 ovs-ofctl -O OpenFlow13 dump-flows br-int`);
  say(`  checks again npm run demo -- check`);
  say(bold(`Tear down:     npm run demo -- down`) + dim(`   (stops the controller and the hypervisors' OVS instances, deletes the demo's ${PREFIX}* namespaces)`));
}

async function up(modelFile: string): Promise<number> {
  const model = loadModelFile(modelFile);
  const zones = new Set(model.hypervisors.map((h) => h.zone));
  say(bold(`zonemesh demo: ${relative(process.cwd(), modelFile) || modelFile}`));
  say(`  ${zones.size} zones, ${model.hypervisors.length} hypervisors, VPCs ${model.vpcs.map((v) => `${v.name} (${model.subnets.filter((s) => s.vpc === v.name).map((s) => `${s.name} ${s.cidr}`).join(', ')})`).join(' and ')}, ${model.ports.length} VMs`);
  const stopped = await stopController();
  if (stopped) say(dim(`  stopped the previous demo's controller (pid ${stopped})`));
  const t0 = Date.now();
  const scenario = await overlayUp(modelFile, { stateDir: STATE_DIR, prefix: PREFIX });
  say(`  scenario up in ${secs(Date.now() - t0)}: one network namespace per hypervisor (${PREFIX}h-*) with its own ovsdb-server and ovs-vswitchd, VMs in ${PREFIX}v-*, underlay router ${PREFIX}ul; state ${STATE_DIR}`);
  const t1 = Date.now();
  let ctl: RunningController;
  try {
    ctl = await startController(modelFile, scenario.hypervisorsJson, { dir: CONTROLLER_DIR, detached: true });
  } catch (e) {
    say(red(`  the controller did not come up: ${(e as Error).message}`));
    say(`  tear down: npm run demo -- down`);
    return 1;
  }
  const sync = await ctl.waitInSync();
  const hvs = readHypervisorsJson(scenario.hypervisorsJson);
  say(`  controller pid ${ctl.pid} (apps tunnel-mesh, arp-responder, distributed-router, acl) dialled ${Object.keys(hvs).length} br-int.mgmt sockets; in sync after ${secs(Date.now() - t1)}:`);
  for (const [name, h] of Object.entries(hvs)) {
    const s = sync.switches[h.datapathId]!;
    say(`    ${name} ${h.zone} tunnel ${h.tunnelIp.padEnd(12)} dpid ${h.datapathId}  ${s.installed} flows installed = desired, Geneve port zm-tun ${sync.tunnelPorts.includes(name) ? 'ready' : 'MISSING'}`);
  }
  const ok = await checks(scenario, model);
  printRunning(ctl);
  return ok ? 0 : 1;
}

async function check(): Promise<number> {
  const pid = runningPid();
  const stateFile = join(STATE_DIR, 'state.json');
  if (pid === undefined || !existsSync(stateFile)) {
    say(red(`no running demo in ${STATE_DIR}: npm run demo`));
    return 1;
  }
  const st = JSON.parse(readFileSync(stateFile, 'utf8')) as OverlayState;
  const config = JSON.parse(readFileSync(join(CONTROLLER_DIR, 'run.json'), 'utf8')) as { model: string };
  const scenario = new OverlayScenario(STATE_DIR, PREFIX, { stateDir: STATE_DIR, stateFile, hypervisorsJson: st.hypervisorsJson, controllerMode: st.controllerMode, hypervisors: readHypervisorsJson(st.hypervisorsJson), timings: {} });
  say(bold(`zonemesh demo: checking the running demo (controller pid ${pid}, model ${config.model})`));
  const ok = await checks(scenario, loadModelFile(config.model));
  printRunning({ pid, logFile: join(CONTROLLER_DIR, 'zonemesh.log'), controlSocket: join(CONTROLLER_DIR, 'control.sock'), modelFile: config.model });
  return ok ? 0 : 1;
}

async function down(): Promise<number> {
  const pid = await stopController();
  const report = await overlayDown(STATE_DIR, PREFIX);
  say(`zonemesh demo: ${pid ? `controller (pid ${pid}) stopped, ` : ''}scenario down: ${report.namespaces.length} namespaces deleted, ${report.stopped.length} processes stopped (${report.elapsedMs} ms)`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  const command = args[0] && !args[0].startsWith('-') ? args.shift()! : 'up';
  let model = DEFAULT_MODEL;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--model' && args[i + 1]) model = args[++i]!;
    else {
      console.error(`usage: npm run demo -- [up [--model FILE] | check | down]  (unknown: ${args[i]})`);
      return 2;
    }
  }
  // npm runs scripts in the package root; a relative --model is the user's, from where they typed
  if (command === 'up') return up(resolve(process.env.INIT_CWD ?? process.cwd(), model));
  if (command === 'check') return check();
  if (command === 'down') return down();
  console.error(`usage: npm run demo -- [up [--model FILE] | check | down]  (unknown command ${command})`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(red(`demo failed: ${(e as Error)?.stack ?? String(e)}`));
    console.error(`tear down: npm run demo -- down`);
    process.exit(1);
  },
);
