/**
 * Floating IPs on real OVS (docs/north-south.md), on the multi-zone Mininet scenario with
 * models/north-south.yaml and the controller running the overlay apps plus north-south. Gateways
 * do not forward to an external segment yet, so the proof stops at the gateway: outbound, a VM's
 * packet to the outside crosses the underlay already translated to its floating IP, in its VPC's
 * VNI, from its own hypervisor to a gateway of its own zone; inbound, OVS's own ofproto/trace of a
 * packet tunnelled from that gateway to the floating IP ends at the VM's port, translated back.
 */
import test from 'ava';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gatewayFor } from '../../src/apps/north-south';
import { TUNNEL_OFPORT, loadModelFile } from '../../src/model';
import { OVERLAY_APPS, innerFlow, innerLayer, overlayUp, startController, type OverlayScenario, type RunningController } from '../helpers/overlay';
import { REPO_ROOT } from '../helpers/paths';
import { TEST_STATE_DIR, run } from '../helpers/run';

const dir = join(TEST_STATE_DIR, 'north-south');
const modelFile = join(dir, 'model.yaml');
const INTERNET = '192.0.2.80';

let scenario: OverlayScenario | undefined;
let controller: RunningController | undefined;

test.before(async () => {
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(REPO_ROOT, 'models', 'north-south.yaml'), modelFile);
  scenario = await overlayUp(modelFile, { stateDir: join(dir, 'net'), prefix: 'zmns' });
  controller = await startController(modelFile, scenario.hypervisorsJson, { apps: [...OVERLAY_APPS, 'north-south'] });
});

test.after.always(async () => {
  try {
    await controller?.stop();
  } finally {
    await scenario?.down();
  }
});

test('outbound: a VM with a floating IP leaves translated, tunnelled to a gateway of its own zone only', async (t) => {
  const model = loadModelFile(modelFile);
  const web1 = model.ports.find((p) => p.name === 'web1')!;
  const host = model.hypervisors.find((h) => h.name === web1.hypervisor)!;
  const gateway = gatewayFor(model, web1, host)!;
  const fip = model.floatingIps.find((f) => f.port === 'web1')!;
  const capture = await scenario!.startCapture('fip-out', { where: 'uplinks' });
  // nothing answers yet (no gateway forwarding): the capture is the evidence
  await scenario!.ping('web1', INTERNET, 3);
  await capture.stop();
  const frames = capture.tunnelFrames();
  const translated = innerFlow(frames, fip.ip, INTERNET);
  t.true(translated.length >= 3, `${translated.length} translated frames on the underlay`);
  for (const f of translated) {
    t.deepEqual([f.outerSrc, f.outerDst, f.vni], [host.tunnelIp, gateway.tunnelIp, 101]);
    t.is(innerLayer(f, 'ethernet')?.src, fip.mac);
  }
  t.deepEqual(innerFlow(frames, web1.ip, INTERNET), [], 'the VM address never crosses the underlay toward the outside');
  const zoneB = new Set(model.hypervisors.filter((h) => h.zone === 'zone-b').map((h) => h.tunnelIp));
  t.deepEqual(translated.filter((f) => zoneB.has(f.outerDst) || zoneB.has(f.outerSrc)), [], 'never into another zone');
});

test('inbound: OVS delivers a packet tunnelled to the floating IP to the VM, translated back', async (t) => {
  const model = loadModelFile(modelFile);
  const state = scenario!.state();
  const web1 = model.ports.find((p) => p.name === 'web1')!;
  const host = model.hypervisors.find((h) => h.name === web1.hypervisor)!;
  const gateway = gatewayFor(model, web1, host)!;
  const fip = model.floatingIps.find((f) => f.port === 'web1')!;
  const flow = [
    `in_port=${TUNNEL_OFPORT}`,
    'tun_id=0x65',
    `tun_src=${gateway.tunnelIp}`,
    `tun_dst=${host.tunnelIp}`,
    'dl_src=0e:00:00:00:00:01',
    'dl_dst=0e:00:00:00:00:02',
    'icmp',
    `nw_src=${INTERNET}`,
    `nw_dst=${fip.ip}`,
    'nw_ttl=60',
    'icmp_type=8',
  ].join(',');
  const trace = async (f: string) => (await run('ovs-appctl', ['-t', state.hypervisors[host.name]!.unixctl, 'ofproto/trace', 'br-int', f])).stdout;
  const stdout = await trace(flow);
  const final = /^Final flow: (.*)$/m.exec(stdout)?.[1] ?? '';
  t.regex(final, new RegExp(`nw_dst=${web1.ip.replaceAll('.', '\\.')}\\b`), stdout);
  t.regex(final, new RegExp(`dl_dst=${web1.mac}`), stdout);
  const hvState = state.hypervisors[host.name]!;
  const ofport = (await run('ovs-vsctl', [`--db=${hvState.ovsdb}`, 'get', 'interface', state.vms.web1!.interface, 'ofport'])).stdout.trim();
  t.regex(stdout, new RegExp(`^\\s+output:${ofport}$`, 'm'), stdout);
  // another VPC's VNI with the same floating IP goes nowhere near web1
  const other = await trace(flow.replace('tun_id=0x65', 'tun_id=0x11170'));
  t.notRegex(other, new RegExp(`^\\s+output:${ofport}$`, 'm'), other);
});
