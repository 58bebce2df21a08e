import { type NetworkModel, type OwnerGroup, type Pipeline, compileOwners } from '../../sdk';
import { type NorthSouthPlaces, floatingIpOwners, gatewayAttachments, gatewayHostOwners } from './flows';
import { snatOwners } from './snat';

/** Every owner of the app: floating IPs, gateways' own addresses, SNAT per VM and per address. */
export function northSouthGroups(pipeline: Pipeline, model: NetworkModel, places: NorthSouthPlaces): OwnerGroup[] {
  const attachments = gatewayAttachments(model, places);
  // fresh tokens: ports get plugged in under the same model, and the owners' signatures tell
  return [
    { key: 'floating-ips', token: {}, owners: () => floatingIpOwners(pipeline, model, places, attachments) },
    { key: 'gateways', token: {}, owners: () => gatewayHostOwners(pipeline, model, attachments) },
    { key: 'snat', token: {}, owners: () => snatOwners(pipeline, model, places, attachments) },
  ];
}

/** every owner's flows, for tests and `zonemesh flows` */
export function compileNorthSouth(pipeline: Pipeline, model: NetworkModel, places: NorthSouthPlaces) {
  return compileOwners(northSouthGroups(pipeline, model, places));
}
