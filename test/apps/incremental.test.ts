import test from 'ava';
import fc from 'fast-check';
import { ACL_APP_ID, aclGroups } from '../../src/apps/acl';
import { ARP_RESPONDER_APP_ID, arpResponderGroups, gratuitousArps } from '../../src/apps/arp-responder';
import { DISTRIBUTED_ROUTER_APP_ID, distributedRouterGroups } from '../../src/apps/distributed-router';
import type { OverlayView } from '../../src/apps/overlay';
import { TUNNEL_MESH_APP_ID, tunnelMeshGroups } from '../../src/apps/tunnel-mesh';
import { diffFlows } from '../../src/sdk/diff';
import { ModelValidationError, type NetworkModel, VNI_MAX } from '../../src/model';
import { formatMessage } from '../../src/openflow';
import type { Flow } from '../../src/sdk/flow';
import { IncrementalCompiler, type OwnerGroup, compileOwners, flowsOn } from '../../src/sdk/incremental';
import type { Pipeline } from '../../src/sdk/pipeline';
import { PIPELINE, edit, flowModText, ipv4Only, perSwitch, placeAll, twoZones, viewOf } from './helpers';

/** the edited model, or undefined when validation refuses it */
function editOrRefused(m: NetworkModel, change: (doc: any) => void): NetworkModel | undefined {
  try {
    return edit(m, change);
  } catch (e) {
    if (e instanceof ModelValidationError) return undefined;
    throw e;
  }
}

const APPS: [string, number, (p: Pipeline, v: OverlayView) => OwnerGroup[]][] = [
  ['tunnel-mesh', TUNNEL_MESH_APP_ID, tunnelMeshGroups],
  ['arp-responder', ARP_RESPONDER_APP_ID, arpResponderGroups],
  ['distributed-router', DISTRIBUTED_ROUTER_APP_ID, distributedRouterGroups],
  ['acl', ACL_APP_ID, aclGroups],
];

/** one engine per app, as the runtime runs them */
class Overlay {
  readonly engines = APPS.map(() => new IncrementalCompiler());
  view?: OverlayView;

  /** the changes, one per (owner, switch) */
  update(model: NetworkModel, placement = placeAll(model)): { app: string; appId: number; change: { owner: string; dpid: bigint; flows: readonly Flow[] } }[] {
    this.view = viewOf(model, placement, this.view);
    return APPS.flatMap(([app, appId, groups], i) =>
      this.engines[i]!.update(groups(PIPELINE, this.view!)).flatMap(({ owner, dpids, flows }) => dpids.map((dpid) => ({ app, appId, change: { owner, dpid, flows } }))),
    );
  }

  flows(i: number, owner: string, dpid: bigint) {
    return flowsOn(this.engines[i]!.snapshot().get(owner), dpid);
  }
}

function hvName(m: NetworkModel, dpid: bigint): string {
  return m.hypervisors.find((h) => h.datapathId === dpid)!.name;
}

/** the FLOW_MODs that take each changed owner from its old flows to its new ones, as text */
function flowMods(before: Overlay, model: NetworkModel): string[] {
  const snapshots = before.engines.map((e) => e.snapshot());
  return before.update(model).flatMap(({ app, appId, change }) => {
    const i = APPS.findIndex(([name]) => name === app);
    const old = flowsOn(snapshots[i]!.get(change.owner), change.dpid);
    const d = diffFlows(change.flows, old.map(({ table: _t, ...f }) => f), new Set([appId]));
    return [...d.deletes, ...d.modifies, ...d.adds].map((fm) => `${app} ${change.owner} @${hvName(model, change.dpid)}: ${flowModText(fm)}`);
  });
}

const withWeb4 = (m: NetworkModel) =>
  edit(m, (doc) => doc.ports.push({ name: 'web4', vpc: 'blue', subnet: 'web', mac: '02:00:00:01:01:0e', ip: '10.1.1.14', hypervisor: 'hv1' }));

test('one port add touches only the flows it owns, on the switches it affects: the exact FLOW_MODs', (t) => {
  // IPv4 only, to keep the list readable: a port's IPv6 flows are in the golden files
  const m = ipv4Only(twoZones());
  const overlay = new Overlay();
  overlay.update(m);
  const mods = flowMods(overlay, withWeb4(m));
  const web4 = overlay.view!.vpcByName.get('blue')!.portByName.get('web4')!;
  const key = web4.key.toString(16);
  const web = overlay.view!.vpcByName.get('blue')!.subnetByName.get('web')!.key.toString(16);
  t.is(web4.ofport, 3);
  const toHv1 = `set_field:0x65->tun_id,set_field:0x${key}->tun_metadata0,set_field:172.16.1.11->tun_dst,output:4000`;
  const l2 = `table=l2.lookup, priority=100,metadata=0x65,dl_dst=02:00:00:01:01:0e actions=set_field:0x${key}->reg7,set_field:0x${web}->reg4,goto_table:acl.conntrack`;
  const remote = (hv: string) => [
    `tunnel-mesh port:web4 @${hv}: add ${l2}`,
    `tunnel-mesh port:web4 @${hv}: add table=output, priority=100,reg7=0x${key},metadata=0x65 actions=${toHv1}`,
  ];
  const answer =
    `table=arp.responder, priority=200,arp,reg5=0x${web},metadata=0x65,dl_dst=ff:ff:ff:ff:ff:ff,arp_tpa=10.1.1.14,arp_op=1 actions=` +
    'move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:00:01:01:0e->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],' +
    'move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:02:00:00:01:01:0e->arp_sha,set_field:10.1.1.14->arp_spa,IN_PORT';
  const route = (hv: string) =>
    `distributed-router port:web4 @${hv}: add table=l3.route, priority=100,ip,metadata=0x65,nw_dst=10.1.1.14 actions=set_field:0a:11:d6:e3:6c:06->eth_src,set_field:02:00:00:01:01:0e->eth_dst,dec_ttl,goto_table:l2.lookup`;
  // the list every other hypervisor shares comes first, then the port's own hypervisor's
  t.deepEqual(mods, [
    ...remote('hv2'),
    ...remote('hv3'),
    ...remote('hv4'),
    `tunnel-mesh port:web4 @hv1: add table=classify, priority=100,in_port=3 actions=set_field:0x${web}->reg5,set_field:0x${key}->reg6,write_metadata:0x65,goto_table:spoofguard`,
    'tunnel-mesh port:web4 @hv1: add table=spoofguard, priority=100,ip,in_port=3,dl_src=02:00:00:01:01:0e,nw_src=10.1.1.14 actions=goto_table:arp.responder',
    'tunnel-mesh port:web4 @hv1: add table=spoofguard, priority=100,arp,in_port=3,dl_src=02:00:00:01:01:0e,arp_spa=10.1.1.14,arp_sha=02:00:00:01:01:0e actions=goto_table:arp.responder',
    `tunnel-mesh port:web4 @hv1: add ${l2}`,
    `tunnel-mesh port:web4 @hv1: add table=output, priority=100,reg7=0x${key},metadata=0x65 actions=output:3`,
    `tunnel-mesh port:web4 @hv1: add table=tunnel.in, priority=100,ip,tun_id=0x65,tun_metadata0=0x${key} actions=ct(commit,zone=101),output:3`,
    `tunnel-mesh port:web4 @hv1: add table=tunnel.in, priority=90,tun_id=0x65,tun_metadata0=0x${key} actions=output:3`,
    `tunnel-mesh flood:blue/web @hv1: modify_strict table=output, priority=100,reg7=0x${web},metadata=0x65 actions=output:1,output:3,set_field:0x65->tun_id,set_field:0x${web}->tun_metadata0,set_field:172.16.2.13->tun_dst,output:4000`,
    `tunnel-mesh flood:blue/web @hv1: modify_strict table=tunnel.in, priority=100,tun_id=0x65,tun_metadata0=0x${web} actions=output:1,output:3`,
    `arp-responder port:web4 @hv3: add ${answer}`,
    'arp-responder port:web4 @hv1: add table=arp.responder, priority=300,arp,reg6=0x' + key + ',metadata=0x65,arp_tpa=10.1.1.14,arp_op=1 actions=drop',
    `arp-responder port:web4 @hv1: add ${answer}`,
    route('hv1'),
    route('hv2'),
    route('hv3'),
    route('hv4'),
  ]);
});

test('a port removed: one delete by cookie per owner and switch', (t) => {
  const m = withWeb4(twoZones());
  const overlay = new Overlay();
  overlay.update(m);
  const mods = flowMods(overlay, twoZones());
  t.is(mods.filter((l) => / port:web4 /.test(l) && / delete cookie=/.test(l)).length, 4 + 2 + 4);
  t.deepEqual(
    mods.filter((l) => !/ port:web4 /.test(l)).map((l) => l.slice(0, l.indexOf(':', l.indexOf('@')))),
    ['tunnel-mesh flood:blue/web @hv1', 'tunnel-mesh flood:blue/web @hv1'],
  );
});

test('a VM move changes only its own owners and its subnet flood, and announces itself with gratuitous ARP', (t) => {
  const m = withWeb4(twoZones());
  const moved = edit(m, (doc) => (doc.ports.find((p: { name: string }) => p.name === 'web4').hypervisor = 'hv3'));
  const overlay = new Overlay();
  overlay.update(m);
  const before = overlay.view!;
  const changed = overlay.update(moved).map(({ app, change }) => `${app} ${change.owner} @${hvName(m, change.dpid)}`);
  t.deepEqual([...new Set(changed)].sort(), [
    'arp-responder port:web4 @hv1',
    'arp-responder port:web4 @hv3',
    'tunnel-mesh flood:blue/web @hv1',
    'tunnel-mesh flood:blue/web @hv3',
    'tunnel-mesh port:web4 @hv1',
    'tunnel-mesh port:web4 @hv2',
    'tunnel-mesh port:web4 @hv3',
    'tunnel-mesh port:web4 @hv4',
  ]);
  const garps = gratuitousArps(before, overlay.view!);
  t.deepEqual(
    garps.map((g) => `@${hvName(m, g.dpid)} ${formatMessage(g.message)}`),
    ['@hv1 OFPT_PACKET_OUT xid=0x0 in_port=CONTROLLER actions=output:1 data_len=42', '@hv3 OFPT_PACKET_OUT xid=0x0 in_port=CONTROLLER actions=output:1 data_len=42'],
  );
});

test('placement: a port whose interface is missing has no local flows until it appears', (t) => {
  const m = withWeb4(twoZones());
  const hv1 = m.hypervisors[0]!.datapathId;
  const placed = placeAll(m);
  const missing = new Map(placed);
  missing.set(hv1, new Map([...placed.get(hv1)!].filter(([iface]) => iface !== 'web4')));
  const overlay = new Overlay();
  overlay.update(m, missing);
  t.deepEqual(overlay.flows(0, 'port:web4', hv1), []);
  const changes = overlay.update(m, placed).map(({ app, change }) => `${app} ${change.owner} @${hvName(m, change.dpid)}`);
  t.deepEqual(changes, ['tunnel-mesh port:web4 @hv1', 'tunnel-mesh flood:blue/web @hv1', 'arp-responder port:web4 @hv1']);
});

test('an unchanged model (even re-read, every object new) compiles to no change at all', (t) => {
  const overlay = new Overlay();
  overlay.update(twoZones());
  t.deepEqual(overlay.update(twoZones()), []);
});

/** every port's and subnet's key in a view, by VPC/name */
function keysOf(view: OverlayView): Map<string, number> {
  const keys = new Map<string, number>();
  for (const vpc of view.vpcs) {
    for (const p of vpc.ports) keys.set(`${vpc.vpc.name}/${p.port.name}`, p.key);
    for (const s of vpc.subnets) keys.set(`${vpc.vpc.name}/subnet:${s.subnet.name}`, s.key);
  }
  return keys;
}

test('incremental state always equals a full compile, and keys never move, over random edit sequences', (t) => {
  const base = twoZones();
  const names = ['n1', 'n2', 'n3', 'n4'];
  const edits = fc.oneof(
    fc.record({ kind: fc.constant('add' as const), name: fc.constantFrom(...names), hv: fc.constantFrom('hv1', 'hv2', 'hv3', 'hv4'), subnet: fc.constantFrom('web', 'app', 'db') }),
    fc.record({ kind: fc.constant('remove' as const), name: fc.constantFrom(...names, 'web1', 'app2') }),
    fc.record({ kind: fc.constant('move' as const), name: fc.constantFrom(...names, 'web2', 'db1'), hv: fc.constantFrom('hv1', 'hv2', 'hv3', 'hv4') }),
    fc.record({ kind: fc.constant('acl' as const), drop: fc.nat(3) }),
    // pins from a small range, so that some collide with each other and the model is refused
    fc.record({ kind: fc.constant('pin' as const), name: fc.constantFrom(...names, 'web1', 'red2'), key: fc.option(fc.integer({ min: 4094, max: 4099 }), { nil: undefined }) }),
    fc.record({ kind: fc.constant('vni' as const), vpc: fc.nat(1), vni: fc.constantFrom(4095, 4096, 70_000, VNI_MAX) }),
  );
  fc.assert(
    fc.property(fc.array(edits, { maxLength: 8 }), (steps) => {
      const overlay = new Overlay();
      let m = base;
      overlay.update(m);
      for (const step of steps) {
        const before = keysOf(overlay.view!);
        const next = editOrRefused(m, (doc) => {
          const i = doc.ports.findIndex((p: { name: string }) => p.name === (step as { name?: string }).name);
          if (step.kind === 'add' && i < 0) {
            const n = names.indexOf(step.name) + 20;
            const third = { web: 1, app: 2, db: 3 }[step.subnet];
            doc.ports.push({ name: step.name, vpc: 'blue', subnet: step.subnet, mac: `02:00:00:09:0${third}:${n}`, ip: `10.1.${third}.${n}`, hypervisor: step.hv });
          } else if (step.kind === 'remove' && i >= 0) doc.ports.splice(i, 1);
          else if (step.kind === 'move' && i >= 0) doc.ports[i].hypervisor = step.hv;
          else if (step.kind === 'acl') doc.vpcs[0].acls.splice(step.drop, 1);
          else if (step.kind === 'pin' && i >= 0) doc.ports[i].tunnelKey = step.key;
          else if (step.kind === 'vni') doc.vpcs[step.vpc].vni = step.vni;
        });
        if (!next) continue; // refused (a key or VNI collision): the model in force stays
        const repinned = step.kind === 'pin' ? `${m.ports.find((p) => p.name === step.name)?.vpc}/${step.name}` : undefined;
        m = next;
        overlay.update(m);
        for (const [name, key] of keysOf(overlay.view!)) {
          if (before.has(name) && name !== repinned) t.is(key, before.get(name)!, `${name} kept its key`);
        }
        APPS.forEach(([, , groups], k) => {
          const full = compileOwners(groups(PIPELINE, viewOf(m)));
          const incremental = overlay.engines[k]!.snapshot();
          t.deepEqual([...incremental.keys()].sort(), [...full.keys()].sort());
          for (const [owner, flows] of full) t.deepEqual(perSwitch(incremental.get(owner)!), perSwitch(flows), owner);
        });
      }
    }),
    { numRuns: 25 },
  );
});
