import { gatewayPortName, outboundGateways } from '../../src/apps/north-south';
import type { NetworkModel } from '../../src/model';
import { type OverlayState, waitFor } from './overlay';
import { run } from './run';

/** Whether each of a hypervisor's BFD sessions to the gateways it sends to is up, by gateway name. */
export async function gatewayBfd(state: OverlayState, model: NetworkModel, hv: string): Promise<Record<string, boolean>> {
  const host = model.hypervisors.find((h) => h.name === hv)!;
  const out: Record<string, boolean> = {};
  for (const g of outboundGateways(model, host)) {
    const r = await run('ovs-vsctl', [`--db=${state.hypervisors[hv]!.ovsdb}`, 'get', 'interface', gatewayPortName(g), 'bfd_status:forwarding']).catch(() => ({ stdout: '' }));
    out[g.name] = r.stdout.trim().replaceAll('"', '') === 'true';
  }
  return out;
}

/**
 * Resolves once every BFD session from `hv` to its gateways is up: the gateways select group's
 * buckets are live only then, and a packet to the outside sent earlier is dropped.
 */
export async function gatewaysUp(state: OverlayState, model: NetworkModel, hv: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(`BFD from ${hv} to its gateways`, () => gatewayBfd(state, model, hv), (up) => Object.values(up).length > 0 && Object.values(up).every(Boolean), { timeoutMs, intervalMs: 200 });
}

/** A hypervisor's OpenFlow flows that translate inbound traffic to a floating IP (…,set_field:VM->ip_dst,…). */
export async function floatingIpTranslations(state: OverlayState, hv: string, fip: string): Promise<string[]> {
  const flows = (await run('ovs-ofctl', ['-O', 'OpenFlow13', 'dump-flows', `unix:${state.hypervisors[hv]!.mgmt}`, `ip,nw_dst=${fip}`])).stdout;
  return flows.split('\n').filter((l) => l.includes('->ip_dst'));
}
