import type { Container } from '../sdk';
import type { AppRegistry } from '../runtime';
import { AclApp } from './acl';
import { ArpResponderApp } from './arp-responder';
import { DistributedRouterApp } from './distributed-router';
import { L2LearningApp } from './l2-learning';
import { StaticFlowsApp } from './static-flows';
import { TUNNEL_PORTS, TunnelMeshApp, VsctlTunnelPorts } from './tunnel-mesh';

/** Every app `zonemesh run --apps` can name. */
export const APP_REGISTRY: AppRegistry = {
  'l2-learning': L2LearningApp,
  'static-flows': StaticFlowsApp,
  'tunnel-mesh': TunnelMeshApp,
  'arp-responder': ArpResponderApp,
  'distributed-router': DistributedRouterApp,
  acl: AclApp,
};

/** Services the apps share; bound lazily, so only what an enabled app injects is built. */
export function bindAppServices(container: Container): void {
  container.bind(TUNNEL_PORTS).to(VsctlTunnelPorts);
}
