import { BACKEND_HEALTH, TUNNEL_HEALTH, type Container } from '../sdk';
import type { AppRegistry, RuntimeOptions } from '../runtime';
import { ACL_APP_ID, AclApp } from './acl';
import { ARP_RESPONDER_APP_ID, ArpResponderApp } from './arp-responder';
import { DHCP_RESPONDER_APP_ID, DhcpResponderApp } from './dhcp-responder';
import { DISTRIBUTED_ROUTER_APP_ID, DistributedRouterApp } from './distributed-router';
import { L2_LEARNING_APP_ID, L2LearningApp } from './l2-learning';
import { BackendHealthBoard, LB_HEALTH_APP_ID, LbHealthApp } from './lb-health';
import { LOAD_BALANCER_APP_ID, LoadBalancerApp } from './load-balancer';
import { BGP_SPEAKERS, GATEWAY_PORTS, NORTH_SOUTH_APP_ID, NorthSouthApp, VtyBgpSpeakers, VsctlGatewayPorts } from './north-south';
import { STATIC_FLOWS_APP_ID, StaticFlowsApp } from './static-flows';
import { TUNNEL_MESH_APP_ID, TUNNEL_PORTS, TunnelMeshApp, VsctlTunnelPorts } from './tunnel-mesh';
import { TUNNEL_MONITOR_APP_ID, TunnelHealthBoard, TunnelMonitorApp } from './tunnel-monitor';

/** Every app `zonemesh run --apps` can name. */
export const APP_REGISTRY: AppRegistry = {
  'l2-learning': L2LearningApp,
  'static-flows': StaticFlowsApp,
  'tunnel-mesh': TunnelMeshApp,
  'arp-responder': ArpResponderApp,
  'distributed-router': DistributedRouterApp,
  acl: AclApp,
  'dhcp-responder': DhcpResponderApp,
  'tunnel-monitor': TunnelMonitorApp,
  'north-south': NorthSouthApp,
  'lb-health': LbHealthApp,
  'load-balancer': LoadBalancerApp,
};

/** Services the apps share; bound lazily, so only what an enabled app injects is built. */
export function bindAppServices(container: Container): void {
  container.bind(TUNNEL_PORTS).to(VsctlTunnelPorts);
  container.bind(GATEWAY_PORTS).to(VsctlGatewayPorts);
  container.bind(BGP_SPEAKERS).to(VtyBgpSpeakers);
  // empty unless tunnel-monitor runs, so readers (metrics, pages) need not know whether it does
  container.bind(TUNNEL_HEALTH).to(TunnelHealthBoard);
  // empty and inactive unless lb-health runs: readers then count every backend healthy
  container.bind(BACKEND_HEALTH).to(BackendHealthBoard);
}

/** The built-in apps' ids: an app loaded from a module may not take one, even when that app is not running. */
export const BUILTIN_APP_IDS: ReadonlyMap<number, string> = new Map([
  [L2_LEARNING_APP_ID, 'l2-learning'],
  [STATIC_FLOWS_APP_ID, 'static-flows'],
  [TUNNEL_MESH_APP_ID, 'tunnel-mesh'],
  [ARP_RESPONDER_APP_ID, 'arp-responder'],
  [DISTRIBUTED_ROUTER_APP_ID, 'distributed-router'],
  [ACL_APP_ID, 'acl'],
  [DHCP_RESPONDER_APP_ID, 'dhcp-responder'],
  [TUNNEL_MONITOR_APP_ID, 'tunnel-monitor'],
  [NORTH_SOUTH_APP_ID, 'north-south'],
  [LB_HEALTH_APP_ID, 'lb-health'],
  [LOAD_BALANCER_APP_ID, 'load-balancer'],
]);

/** What a Runtime needs to run the built-in apps beside app modules: `Runtime.create({ config, ...BUILTIN_APPS })`. */
export const BUILTIN_APPS = {
  registry: APP_REGISTRY,
  bindServices: bindAppServices,
  reservedAppIds: BUILTIN_APP_IDS,
} as const satisfies Pick<RuntimeOptions, 'registry' | 'bindServices' | 'reservedAppIds'>;
