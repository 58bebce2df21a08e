/**
 * The overlay dual-stack on the Mininet scenario, real OVS across Geneve tunnels, on the default
 * model (models/two-zones.yaml: every subnet has a SLAAC /64, red reuses blue's prefixes, every
 * icmp rule has its icmp6 twin). The VMs take their addresses
 * from the controller's router advertisements, the IPv6 ping matrix matches the model's ACLs, and
 * an underlay capture after the VMs' neighbour caches are flushed shows no neighbour discovery or
 * router discovery in any tunnel, routed IPv6 one hop less, straight between the hypervisors, and
 * neither denied nor other-VPC IPv6 in a tunnel.
 *
 * One scenario for all assertions (test/integration/README.md: keep scenario runs few).
 */
import test from 'ava';
import { join } from 'node:path';
import { loadModelFile } from '../../src/model';
import { Icmpv6Type } from '../../src/packet';
import {
  TWO_ZONES_MODEL,
  allowed,
  innerLayer,
  matrixMismatches,
  modelPort,
  overlayUp,
  settledPingMatrix,
  slaacMismatches,
  startController,
  vmIpv6,
  type TunnelFrame,
} from '../helpers/overlay';
import { TEST_STATE_DIR } from '../helpers/run';

const PREFIX = 'zmv6d';
const CONVERGE_MS = 30_000;
/** Linux's default hop limit for unicast (net.ipv6.conf.*.hop_limit) */
const LINUX_HOP_LIMIT = 64;
const ND_AND_RD = new Set<number>([Icmpv6Type.ROUTER_SOLICITATION, Icmpv6Type.ROUTER_ADVERTISEMENT, Icmpv6Type.NEIGHBOR_SOLICITATION, Icmpv6Type.NEIGHBOR_ADVERTISEMENT]);

/** the ICMPv6 type of a tunnelled frame's inner packet, if it has one */
function icmp6Type(frame: TunnelFrame): number | undefined {
  return innerLayer(frame, 'icmpv6')?.icmpType;
}

function echoRequests(frames: readonly TunnelFrame[], src: string, dst: string): TunnelFrame[] {
  return frames.filter((f) => {
    const ip = innerLayer(f, 'ipv6');
    return ip?.src === src && ip.dst === dst && icmp6Type(f) === Icmpv6Type.ECHO_REQUEST;
  });
}

const describeFrame = (f: TunnelFrame) => {
  const ip = innerLayer(f, 'ipv6');
  return `${f.at}#${f.index} VNI ${f.vni} ${f.outerSrc}->${f.outerDst}: ${ip?.src} -> ${ip?.dst} icmp6 type ${icmp6Type(f)} hlim ${ip?.hopLimit}`;
};

test('dual-stack overlay: SLAAC from our RAs, IPv6 matrix as the ACLs say, no ND in tunnels, routed once, VPCs apart', async (t) => {
  t.timeout(240_000);
  const model = loadModelFile(TWO_ZONES_MODEL);
  const vms = model.ports.map((p) => p.name);
  const scenario = await overlayUp(TWO_ZONES_MODEL, { stateDir: join(TEST_STATE_DIR, 'overlay-ipv6'), prefix: PREFIX });
  try {
    const controller = await startController(TWO_ZONES_MODEL, scenario.hypervisorsJson);
    try {
      t.deepEqual(matrixMismatches(model, await settledPingMatrix(scenario, model, { family: 4, timeoutMs: CONVERGE_MS })), [], 'the IPv4 matrix as the model says');

      // SLAAC: the model's EUI-64 address, the router's link-local as default route, the RA's MTU
      const slaac = await scenario.slaac();
      t.deepEqual(slaacMismatches(model, slaac), [], 'every VM configured itself from our router advertisement');
      t.is(Object.keys(slaac.vms).length, vms.length, 'every VM is dual-stack');
      t.log(`SLAAC: all ${vms.length} VMs in ${slaac.elapsedMs} ms`);

      const matrix = await settledPingMatrix(scenario, model, { family: 6, timeoutMs: CONVERGE_MS });
      t.deepEqual(matrixMismatches(model, matrix), [], 'the IPv6 matrix as the model says');
      t.is(matrix.pairs.length, vms.length * (vms.length - 1), 'every ordered pair pinged over IPv6');
      const routedAllowed = matrix.pairs.filter((r) => r.ok && modelPort(model, r.src).subnet !== modelPort(model, r.dst).subnet);
      t.true(routedAllowed.length > 0, 'some routed IPv6 pairs are allowed (the icmp6 rules)');
      t.true(matrix.pairs.some((r) => !r.ok && modelPort(model, r.src).vpc === modelPort(model, r.dst).vpc), 'some same-VPC IPv6 pairs are denied');
      t.true(matrix.pairs.filter((r) => modelPort(model, r.src).vpc !== modelPort(model, r.dst).vpc).every((r) => !r.ok), 'no IPv6 between VPCs');
      t.true(matrix.pairs.filter((r) => r.src.startsWith('red') && r.dst.startsWith('red')).every((r) => r.ok), 'red reaches red in the prefix blue also uses');

      // after the neighbour caches are flushed, every VM resolves its neighbours (and router) anew
      await Promise.all(vms.map((vm) => scenario.exec(vm, ['ip', '-6', 'neigh', 'flush', 'all'])));
      const capture = await scenario.startCapture('ipv6-matrix', { filter: 'udp port 6081' });
      const routed = { src: 'web2', dst: 'app1' }; // zone-b to zone-a, web to app: allowed by web-to-app-ping6
      let replyHopLimits: number[] = [];
      try {
        await scenario.pingMatrix({ count: 2, family: 6 });
        const out = await scenario.exec(routed.src, ['ping', '-6', '-n', '-c', '2', '-i', '0.2', '-W', '1', vmIpv6(model, routed.dst)]);
        replyHopLimits = [...out.stdout.matchAll(/ttl=(\d+)/g)].map((m) => Number(m[1]));
      } finally {
        await capture.stop();
      }
      const frames = capture.tunnelFrames();
      // the flushed caches were filled again: by NAs that came from the local bridge, as no NS crossed a tunnel
      const web1Neighbours = (await scenario.exec('web1', ['ip', '-6', 'neigh', 'show', vmIpv6(model, 'web2')])).stdout;
      t.regex(web1Neighbours, new RegExp(`lladdr ${modelPort(model, 'web2').mac}`), 'web1 resolved web2 (on another hypervisor) anew');
      t.log(`capture: ${frames.length} tunnel frames, ${frames.filter((f) => innerLayer(f, 'ipv6') !== undefined).length} of them IPv6`);
      t.true(frames.some((f) => innerLayer(f, 'ipv6') !== undefined), 'the capture saw IPv6 in the tunnels');
      t.deepEqual(frames.filter((f) => ND_AND_RD.has(icmp6Type(f) ?? -1)).map(describeFrame), [], 'no NS, NA, RS or RA in any tunnel');

      // routed IPv6: one hop less on the tunnel, straight from the source's hypervisor to the destination's
      const hvOf = (vm: string) => scenario.state().hypervisors[modelPort(model, vm).hypervisor]!.tunnelIp;
      const requests = echoRequests(frames, vmIpv6(model, routed.src), vmIpv6(model, routed.dst));
      t.true(requests.length > 0, `${routed.src} -> ${routed.dst} echo requests crossed a tunnel`);
      t.deepEqual(
        [...new Set(requests.map((f) => `${f.outerSrc}->${f.outerDst} hlim ${innerLayer(f, 'ipv6')!.hopLimit}`))],
        [`${hvOf(routed.src)}->${hvOf(routed.dst)} hlim ${LINUX_HOP_LIMIT - 1}`],
        'routed once, at the source, and tunnelled hypervisor to hypervisor',
      );
      t.deepEqual([...new Set(replyHopLimits)], [LINUX_HOP_LIMIT - 1], 'the replies too lost exactly one hop');
      const sameTier = echoRequests(frames, vmIpv6(model, 'web1'), vmIpv6(model, 'web2'));
      t.deepEqual([...new Set(sameTier.map((f) => innerLayer(f, 'ipv6')!.hopLimit))], [LINUX_HOP_LIMIT], 'within a tier nothing is routed');

      // denied IPv6 never enters a tunnel; each VNI carries its own VPC's addresses only
      const deniedPairs = matrix.pairs.filter((r) => modelPort(model, r.src).vpc === modelPort(model, r.dst).vpc && !allowed(model, modelPort(model, r.src), modelPort(model, r.dst), 'icmp6'));
      t.deepEqual(deniedPairs.flatMap((r) => echoRequests(frames, vmIpv6(model, r.src), vmIpv6(model, r.dst)).map(describeFrame)), [], 'denied echo requests stay at their source');
      const addressesOf = (vni: number) => {
        const vpc = model.vpcs.find((v) => v.vni === vni)?.name;
        return new Set(model.ports.filter((p) => p.vpc === vpc).map((p) => vmIpv6(model, p.name)));
      };
      const foreign = frames.filter((f) => {
        const ip = innerLayer(f, 'ipv6');
        return ip !== undefined && icmp6Type(f) === Icmpv6Type.ECHO_REQUEST && !(addressesOf(f.vni).has(ip.src) && addressesOf(f.vni).has(ip.dst));
      });
      t.deepEqual(foreign.map(describeFrame), [], 'no echo request crosses between VPCs with the same prefix');
    } finally {
      await controller.stop();
    }
  } finally {
    await scenario.down();
  }
});
