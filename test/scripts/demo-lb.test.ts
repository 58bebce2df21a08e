/**
 * The demo's load-balancer picks (scripts/demo-lb.ts), without OVS: on the default model they are
 * its app tier's VIPs with a client in each zone that the ACLs let reach the backends; a model
 * without load balancers gets a reason to skip, not a pick.
 */
import test from 'ava';
import { loadModelFile, type NetworkModel, type VmPort } from '../../src/model';
import { pickFailover, pickSplit, pickZoneAffinity } from '../../scripts/demo-lb';
import type { Picked } from '../../scripts/overlay-demo';
import { THREE_ZONES_MODEL, TWO_ZONES_MODEL, allowed, modelPort } from '../helpers/overlay';
import { edit } from '../apps/helpers';

const model = loadModelFile(TWO_ZONES_MODEL);
const zone = (m: NetworkModel, p: VmPort) => m.hypervisors.find((h) => h.name === p.hypervisor)!.zone;

function picked<T>(p: Picked<T>): T {
  if ('skipped' in p) throw new Error(`expected a pick, got ${p.skipped}`);
  return p.pick;
}

/** every client may open every backend's port */
const reaches = (m: NetworkModel, client: VmPort, lb: NetworkModel['loadBalancers'][number]) => lb.backends.every((b) => allowed(m, client, modelPort(m, b.port), 'tcp', b.targetPort ?? lb.ports[0]));

test('two-zones: the split is over a VIP without affinity, from a client in each zone that may reach every backend and is none', (t) => {
  const { lb, clients } = picked(pickSplit(model));
  t.false(lb.zoneAffinity);
  t.is(lb.sessionAffinity, undefined);
  t.deepEqual(clients.map((c) => zone(model, c)), ['zone-a', 'zone-b']);
  t.deepEqual(new Set(lb.backends.map((b) => zone(model, modelPort(model, b.port)))), new Set(['zone-a', 'zone-b']), 'backends in both zones');
  for (const c of clients) {
    t.is(c.vpc, lb.vpc);
    t.false(lb.backends.some((b) => b.port === c.name), `${c.name} is no backend`);
    t.true(reaches(model, c, lb), `${c.name} may reach every backend`);
  }
});

test('two-zones: zone affinity is measured on the zone-affine VIP; the failover stops the backend in its client\'s zone, so the client fails over to the other zone', (t) => {
  const affinity = picked(pickZoneAffinity(model));
  t.true(affinity.lb.zoneAffinity);
  t.deepEqual(affinity.clients.map((c) => zone(model, c)), ['zone-a', 'zone-b']);
  const { lb, client, victim } = picked(pickFailover(model));
  t.true(lb.zoneAffinity, 'the zone-affine VIP, when it is health-checked');
  t.truthy(lb.healthCheck);
  t.true(reaches(model, client, lb));
  t.is(zone(model, modelPort(model, victim)), zone(model, client));
  t.true(lb.backends.some((b) => zone(model, modelPort(model, b.port)) !== zone(model, client)), 'a backend to fail over to');
});

test('a model without load balancers, or whose clients the ACLs keep from the backends, gets reasons instead of picks', (t) => {
  const none = loadModelFile(THREE_ZONES_MODEL);
  t.is(none.loadBalancers.length, 0);
  for (const pick of [pickSplit, pickZoneAffinity, pickFailover]) t.regex((pick(none) as { skipped: string }).skipped, /^skipped: no /);
  // without the rule that lets web open app's 8080, no VM may reach the backends
  const closed = edit(model, (doc) => doc.vpcs.forEach((v: { acls?: { name: string }[] }) => (v.acls = v.acls?.filter((a) => a.name !== 'web-to-app-http'))));
  for (const pick of [pickSplit, pickZoneAffinity, pickFailover]) t.true('skipped' in pick(closed), pick.name);
});
