/**
 * The Mininet scenario itself, without the controller: mininet/zonemesh_net.py builds the
 * two-zone topology from models/two-zones.yaml (router namespace, one namespace with its own
 * ovsdb-server and ovs-vswitchd per hypervisor, VMs as namespaces), the underlay joins the
 * zones, the probes work, and `down` leaves nothing behind.
 */
import test from 'ava';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { findLayer, IpProto } from '../../src/packet';
import { derivedDatapathId, loadModelFile } from '../../src/model';
import { subnetInfo } from '../../src/sdk';
import { ipv4InfoOf } from '../../src/testing';
import {
  MININET_PYTHON,
  OVERLAY_SCRIPT,
  TWO_ZONES_MODEL,
  overlayDown,
  overlayUp,
  readHypervisorsJson,
  type OverlayScenario,
  type OverlayState,
} from '../helpers/overlay';
import { run, TEST_STATE_DIR } from '../helpers/run';

const model = loadModelFile(TWO_ZONES_MODEL);

async function netnsList(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

function pidAlive(pidfile: string): { pid: number; alive: boolean; cmd: string } {
  const pid = Number(readFileSync(pidfile, 'utf8').trim());
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    return { pid, alive: true, cmd };
  } catch {
    return { pid, alive: false, cmd: '' };
  }
}

/** A zombie waiting for its reaper (the daemons' parent is init) has stopped running. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function ovsVsctl(db: string, args: readonly string[]): Promise<string> {
  return run('ovs-vsctl', ['--timeout=10', `--db=${db}`, ...args]).then((r) => r.stdout.trim());
}

function ns(netns: string, args: readonly string[]): Promise<string> {
  return run('ip', ['netns', 'exec', netns, ...args]).then((r) => r.stdout);
}

function scenarioNamespaces(s: OverlayState): string[] {
  const outside = s.outside ? [s.outside.edge.netns, s.outside.internet.netns] : [];
  return [s.router.netns, ...Object.values(s.hypervisors).map((h) => h.netns), ...Object.values(s.vms).map((v) => v.netns), ...outside];
}

/** Brings the scenario up for one test and always tears it down; asserts that nothing is left. */
async function withScenario(
  name: string,
  opts: { mode?: 'dial' | 'listen'; model?: string },
  fn: (s: OverlayScenario, state: OverlayState) => Promise<void>,
): Promise<void> {
  const stateDir = join(TEST_STATE_DIR, name);
  const scenario = await overlayUp(opts.model ?? TWO_ZONES_MODEL, { stateDir, prefix: 'zmt', mode: opts.mode });
  const state = scenario.state();
  let failure: unknown;
  try {
    await fn(scenario, state);
  } catch (e) {
    failure = e;
  }
  const report = await scenario.down();
  if (failure) throw failure;
  // nothing left: namespaces, daemons, run directories, state files
  const left = (await netnsList()).filter((n) => scenarioNamespaces(state).includes(n));
  if (left.length) throw new Error(`namespaces left after down: ${left.join(', ')}`);
  for (const pid of report.stopped) {
    if (running(pid)) throw new Error(`process ${pid} still runs after down`);
  }
  for (const hv of Object.values(state.hypervisors)) {
    if (existsSync(hv.rundir)) throw new Error(`${hv.rundir} left after down`);
  }
  for (const f of ['state.json', 'hypervisors.json']) {
    if (existsSync(join(stateDir, f))) throw new Error(`${f} left after down`);
  }
}

test('the two-zone scenario comes up from the model: namespaces, daemons, bridges, VMs', async (t) => {
  await withScenario('overlay-topology', {}, async (scenario, s) => {
    t.log(`bring-up ${scenario.up.timings.total}s: ${JSON.stringify(scenario.up.timings)}`);
    // every namespace
    const present = await netnsList();
    for (const n of scenarioNamespaces(s)) t.true(present.includes(n), `netns ${n}`);
    t.true(scenarioNamespaces(s).every((n) => n.startsWith('zm')));

    // hypervisors.json is what the model says, with working endpoints
    const hvJson = readHypervisorsJson(scenario.hypervisorsJson);
    t.deepEqual(Object.keys(hvJson).sort(), model.hypervisors.map((h) => h.name).sort());
    for (const hv of model.hypervisors) {
      const ep = hvJson[hv.name]!;
      const st = s.hypervisors[hv.name]!;
      t.is(ep.tunnelIp, hv.tunnelIp);
      t.is(BigInt(ep.datapathId), hv.datapathId);
      t.is(ep.mode, 'dial');
      t.is(ep.openflow, `unix:${st.rundir}/br-int.mgmt`);
      t.is(ep.ovsdb, `unix:${st.rundir}/db.sock`);

      // its own daemons, alive, by their pidfiles, inside its namespace
      const nsPids = (await run('ip', ['netns', 'pids', st.netns])).stdout.split(/\s+/).filter(Boolean).map(Number);
      for (const daemon of ['ovsdb-server', 'ovs-vswitchd']) {
        const p = pidAlive(join(st.rundir, `${daemon}.pid`));
        t.true(p.alive && p.cmd.includes(daemon) && p.cmd.includes(st.rundir), `${hv.name} ${daemon}: ${p.cmd}`);
        t.true(nsPids.includes(p.pid), `${hv.name} ${daemon} runs in ${st.netns}`);
      }

      // bridges: br-phy (standalone) with the uplink, br-int (secure, OF1.3, pinned dpid, no controller in dial mode)
      t.deepEqual((await ovsVsctl(ep.ovsdb, ['list-br'])).split('\n').sort(), ['br-int', 'br-phy']);
      t.deepEqual((await ovsVsctl(ep.ovsdb, ['list-ports', 'br-phy'])).split('\n'), ['eth1']);
      t.is(await ovsVsctl(ep.ovsdb, ['get', 'bridge', 'br-phy', 'fail_mode']), 'standalone');
      t.is(await ovsVsctl(ep.ovsdb, ['get', 'bridge', 'br-int', 'fail_mode']), 'secure');
      t.is(await ovsVsctl(ep.ovsdb, ['get', 'bridge', 'br-int', 'datapath_type']), 'netdev');
      t.is(await ovsVsctl(ep.ovsdb, ['get', 'bridge', 'br-int', 'protocols']), '[OpenFlow13]');
      t.is(await ovsVsctl(ep.ovsdb, ['get', 'bridge', 'br-int', 'other_config:disable-in-band']), '"true"');
      t.is(await ovsVsctl(ep.ovsdb, ['get', 'bridge', 'br-int', 'datapath_id']), `"${ep.datapathId.slice(2)}"`);
      t.is(await ovsVsctl(ep.ovsdb, ['get', 'bridge', 'br-int', 'controller']), '[]');
      const vmPorts = model.ports.filter((p) => p.hypervisor === hv.name).map((p) => p.interface);
      const segmentPorts = model.externalNetworks.flatMap((e) => e.gateways.filter((g) => g.hypervisor === hv.name).map((g) => g.interface));
      // the VMs' ports and, on a gateway, its external segment's; no tunnel port: the controller's tunnel-mesh app creates it
      t.deepEqual((await ovsVsctl(ep.ovsdb, ['list-ports', 'br-int'])).split('\n').filter(Boolean).sort(), [...vmPorts, ...segmentPorts].sort());
      // no flows either, and the OpenFlow endpoint answers with the model's datapath id
      const show = (await run('ovs-ofctl', ['-O', 'OpenFlow13', 'show', ep.openflow])).stdout;
      t.regex(show, new RegExp(`dpid:${ep.datapathId.slice(2)}`));
      const flows = (await run('ovs-ofctl', ['-O', 'OpenFlow13', 'dump-flows', ep.openflow])).stdout;
      t.false(flows.includes('cookie='), `${hv.name} br-int has no flows`);

      // the tunnel IP on br-phy, default route via the zone's router
      const zone = model.zones.find((z) => z.name === hv.zone)!;
      const plen = zone.underlay.split('/')[1];
      t.regex(await ns(st.netns, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'br-phy']), new RegExp(`inet ${hv.tunnelIp}/${plen}`));
      t.regex(await ns(st.netns, ['ip', 'route', 'show', 'default']), new RegExp(`default via ${st.gateway} dev br-phy`));
    }

    // the VMs: MAC, IP/prefix, gateway, MTU 1400, tx checksum offload off, peer on the right br-int
    for (const p of model.ports) {
      const vm = s.vms[p.name]!;
      const link = await ns(vm.netns, ['ip', '-o', 'link', 'show', 'eth0']);
      t.regex(link, new RegExp(`mtu 1400 .* link/ether ${p.mac}`), `${p.name} link`);
      const subnet = ipv4InfoOf(subnetInfo(model.subnets.find((x) => x.vpc === p.vpc && x.name === p.subnet)!));
      t.regex(await ns(vm.netns, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']), new RegExp(`inet ${p.ip}/${subnet.prefix}`));
      t.regex(await ns(vm.netns, ['ip', 'route', 'show', 'default']), new RegExp(`default via ${subnet.gateway} dev eth0`));
      t.regex(await ns(vm.netns, ['ethtool', '-k', 'eth0']), /tx-checksumming: off/);
      const hv = s.hypervisors[p.hypervisor]!;
      t.regex(await ns(hv.netns, ['ip', '-o', 'link', 'show', p.interface]), /mtu 1400/);
    }

    // the underlay router: one bridge per zone holding the zone's first address, forwarding on
    for (const z of model.zones) {
      const zs = s.router.zones[z.name]!;
      t.regex(await ns(s.router.netns, ['ip', '-4', '-o', 'addr', 'show', 'dev', zs.bridge]), new RegExp(`inet ${zs.gateway}/`));
    }
    t.is((await ns(s.router.netns, ['sysctl', '-n', 'net.ipv4.ip_forward'])).trim(), '1');

    const status = await scenario.status();
    t.true(Object.values(status.namespaces).every(Boolean));
    t.true(Object.values(status.hypervisors).every((h) => h.daemons['ovs-vswitchd'] && h.daemons['ovsdb-server'] && h.socket === true));
  });
});

test('underlay: every hypervisor reaches every other across zones, and a capture shows the direct path', async (t) => {
  await withScenario('overlay-underlay', {}, async (scenario, s) => {
    const capture = await scenario.startCapture('underlay', { filter: 'icmp' });
    const matrix = await scenario.underlayMatrix();
    await capture.stop();
    for (const a of model.hypervisors) {
      for (const b of model.hypervisors) {
        if (a.name !== b.name) t.true(matrix[a.name]?.[b.name], `${a.name} -> ${b.name} (${a.zone} -> ${b.zone})`);
      }
    }
    t.true(model.hypervisors.some((a) => model.hypervisors.some((b) => a.zone !== b.zone)), 'the model has several zones');

    // hv1 -> hv3 crosses zones through the router: seen on hv1's and hv3's uplinks, nowhere else
    const tip = (hv: string) => s.hypervisors[hv]!.tunnelIp;
    const seen = (at: string, src: string, dst: string) =>
      capture.frames().filter((f) => {
        if (f.at !== at || !f.packet) return false;
        const ip = findLayer(f.packet, 'ipv4');
        return ip?.protocol === IpProto.ICMP && ip.src === src && ip.dst === dst;
      }).length;
    t.true(seen('hv1', tip('hv1'), tip('hv3')) >= 1, 'hv1 -> hv3 on hv1 uplink');
    t.true(seen('hv3', tip('hv1'), tip('hv3')) >= 1, 'hv1 -> hv3 on hv3 uplink');
    t.is(seen('hv2', tip('hv1'), tip('hv3')), 0, 'not on hv2 uplink');
    t.is(seen('hv4', tip('hv1'), tip('hv3')), 0, 'not on hv4 uplink');
    // each hypervisor's OVS knows its next hops (the warm-up seeded the tunnel neighbour cache)
    for (const [name, hv] of Object.entries(s.hypervisors)) {
      const neigh = (await run('ovs-appctl', ['-t', hv.unixctl, 'tnl/neigh/show'])).stdout;
      t.true(neigh.includes(hv.gateway), `${name} has its zone router ${hv.gateway} in tnl/neigh`);
    }
  });
});

test('probes: nc listener and check, ping of an unknown address, move of a VM between hypervisors', async (t) => {
  await withScenario('overlay-probes', {}, async (scenario, s) => {
    // without flows, VMs reach nothing but themselves
    await scenario.ncListen('web1', 8080);
    t.true((await scenario.ncCheck('web1', s.vms.web1!.ip, 8080)).ok, 'web1 reaches its own listener');
    t.false((await scenario.ncCheck('web1', s.vms.web1!.ip, 8081)).ok, 'nothing on 8081');
    await scenario.ncStop('web1', 8080);
    t.false((await scenario.ncCheck('web1', s.vms.web1!.ip, 8080)).ok, 'listener stopped');
    t.false((await scenario.ping('web1', 'app2', 1)).ok, 'no flows, no overlay');

    const moved = await scenario.move('app2', 'hv1');
    t.deepEqual(moved, { port: 'app2', from: 'hv4', to: 'hv1', moved: true });
    const after = scenario.state();
    t.is(after.vms.app2!.hypervisor, 'hv1');
    const ports = async (hv: string) => (await ovsVsctl(after.hypervisors[hv]!.ovsdb, ['list-ports', 'br-int'])).split('\n');
    t.true((await ports('hv1')).includes('app2'));
    t.false((await ports('hv4')).includes('app2'));
    const link = await ns(after.vms.app2!.netns, ['ip', '-o', 'link', 'show', 'eth0']);
    t.regex(link, new RegExp(`mtu 1400 .* link/ether ${after.vms.app2!.mac} .* link-netns ${after.hypervisors.hv1!.netns}`));
    t.regex(await ns(after.vms.app2!.netns, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']), new RegExp(`inet ${after.vms.app2!.ip}/24`));
    t.regex(await ns(after.vms.app2!.netns, ['ethtool', '-k', 'eth0']), /tx-checksumming: off/);
    await t.throwsAsync(scenario.move('app2', 'hv9'), { message: /unknown hypervisor/ });
  });
});

test('listen mode: every br-int connects to a controller socket in its own run directory', async (t) => {
  await withScenario('overlay-listen', { mode: 'listen' }, async (scenario) => {
    const hvJson = readHypervisorsJson(scenario.hypervisorsJson);
    const servers: Server[] = [];
    try {
      const hellos = await Promise.all(
        Object.entries(hvJson).map(([name, ep]) => {
          t.is(ep.mode, 'listen');
          t.is(ep.openflow, `punix:${ep.socket}`);
          t.true(ep.socket.startsWith(`${ep.rundir}/`), 'inside the OVS run directory');
          return new Promise<[string, Buffer]>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`${name}: no connection within 10 s`)), 10_000);
            const server = createServer((sock) => {
              sock.once('data', (d) => {
                clearTimeout(timer);
                resolve([name, d]);
                sock.destroy();
              });
            });
            servers.push(server);
            server.listen(ep.socket);
          });
        }),
      );
      for (const [name, hello] of hellos) {
        t.is(hello[0], 0x04, `${name} speaks OpenFlow 1.3`);
        t.is(hello[1], 0, `${name} starts with HELLO`);
      }
      for (const [name, ep] of Object.entries(hvJson)) {
        const target = await ovsVsctl(ep.ovsdb, ['get', 'controller', 'br-int', 'target']);
        t.is(target, `"unix:${ep.socket}"`, name);
      }
    } finally {
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    }
  });
});

test('down is idempotent and cleans up a scenario whose state file is gone', async (t) => {
  const stateDir = join(TEST_STATE_DIR, 'overlay-crash');
  const scenario = await overlayUp(TWO_ZONES_MODEL, { stateDir, prefix: 'zmt' });
  const names = scenarioNamespaces(scenario.state());
  const pids = Object.values(scenario.state().hypervisors).map((h) => pidAlive(join(h.rundir, 'ovs-vswitchd.pid')).pid);
  // a crash that lost state.json: down finds the namespaces by their prefix, the daemons by the run directories
  await run('rm', ['-f', join(stateDir, 'state.json')]);
  const report = await overlayDown(stateDir, 'zmt');
  t.deepEqual([...report.namespaces].sort(), [...names].sort());
  t.true(pids.every((p) => report.stopped.includes(p)));
  t.false((await netnsList()).some((n) => names.includes(n)));
  const again = await overlayDown(stateDir, 'zmt');
  t.deepEqual(again.namespaces, []);
  t.deepEqual(again.stopped, []);
});

test('a JSON model: derived datapath ids, interface names and pinned ofports as src/model reads them', async (t) => {
  const dir = join(TEST_STATE_DIR, 'overlay-json');
  mkdirSync(dir, { recursive: true });
  const modelFile = join(dir, 'model.json');
  writeFileSync(
    modelFile,
    JSON.stringify({
      zones: [{ name: 'z1', underlay: '192.168.50.0/24' }],
      hypervisors: [
        { name: 'alpha', zone: 'z1', tunnelIp: '192.168.50.10' },
        { name: 'beta', zone: 'z1', tunnelIp: '192.168.50.20', datapathId: 4096 },
      ],
      vpcs: [{ name: 'v', vni: 7, subnets: [{ name: 's', cidr: '10.7.0.0/16', gateway: '10.7.0.1' }] }],
      ports: [
        { name: 'a-very-long-port', interface: 'vnet7', ofport: 42, vpc: 'v', subnet: 's', mac: '02:07:00:00:00:01', ip: '10.7.1.1', hypervisor: 'alpha' },
        { name: 'p2', vpc: 'v', subnet: 's', mac: '02:07:00:00:00:02', ip: '10.7.2.2', hypervisor: 'beta' },
      ],
    }),
  );
  const tsModel = loadModelFile(modelFile);
  // `plan` creates nothing and says what `up` will name things
  const plan = JSON.parse((await run(MININET_PYTHON, [OVERLAY_SCRIPT, '--state', join(dir, 'net'), '--prefix', 'zmt', 'plan', modelFile])).stdout) as OverlayState;
  for (const hv of tsModel.hypervisors) t.is(BigInt(plan.hypervisors[hv.name]!.datapathId), hv.datapathId, hv.name);
  t.is(BigInt(plan.hypervisors.alpha!.datapathId), derivedDatapathId('alpha'));
  for (const p of tsModel.ports) t.is(plan.vms[p.name]!.interface, p.interface);
  t.is(plan.vms['a-very-long-port']!.prefixLen, 16);
  t.false((await netnsList()).includes(plan.router.netns), 'plan created nothing');

  await withScenario('overlay-json', { model: modelFile }, async (scenario, s) => {
    const alpha = s.hypervisors.alpha!;
    t.is(await ovsVsctl(alpha.ovsdb, ['get', 'interface', 'vnet7', 'ofport']), '42');
    t.is(await ovsVsctl(alpha.ovsdb, ['get', 'bridge', 'br-int', 'datapath_id']), `"${alpha.datapathId.slice(2)}"`);
    t.is(await ovsVsctl(s.hypervisors.beta!.ovsdb, ['get', 'bridge', 'br-int', 'datapath_id']), '"0000000000001000"');
    t.regex(await ns(s.vms['a-very-long-port']!.netns, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']), /inet 10\.7\.1\.1\/16/);
    t.deepEqual(await scenario.underlayMatrix(), { alpha: { beta: true }, beta: { alpha: true } });
  });
});

test('an invalid model is refused before anything is created, naming every problem', async (t) => {
  const dir = join(TEST_STATE_DIR, 'overlay-invalid');
  mkdirSync(dir, { recursive: true });
  const modelFile = join(dir, 'bad.yaml');
  writeFileSync(
    modelFile,
    [
      'zones: [{ name: z, underlay: 172.16.9.0/24 }]',
      'hypervisors: [{ name: h, zone: z, tunnelIp: 172.16.9.1 }]',
      'vpcs: [{ name: v, vni: 5, subnets: [{ name: s, cidr: 10.0.0.0/24, gateway: 10.0.0.1 }] }]',
      'ports: [{ name: averyveryverylongportname, vpc: v, subnet: s, mac: "02:00:00:00:00:01", ip: 10.0.0.5, hypervisor: h }]',
    ].join('\n'),
  );
  const e = await t.throwsAsync(overlayUp(modelFile, { stateDir: join(dir, 'net'), prefix: 'zmt' }));
  t.regex(e.message, /tunnelIp: 172\.16\.9\.1 is reserved/);
  t.regex(e.message, /not a Linux interface name/);
  t.false((await netnsList()).some((n) => n.startsWith('zmt')));
});
