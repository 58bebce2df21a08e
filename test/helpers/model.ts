import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { filter, firstValueFrom, timeout, type Observable } from 'rxjs';
import { ModelValidationError, validateModel } from '../../src/model';

/** The problems a validation finds in a model document, as `path: problem` lines (none: valid). */
export function issuesOf(doc: unknown): string[] {
  try {
    validateModel(doc, 'model.yaml');
    return [];
  } catch (e) {
    if (!(e instanceof ModelValidationError)) throw e;
    return e.issues.map((i) => `${i.path}: ${i.problem}`);
  }
}

/** A small valid model document: one zone, hypervisor, VPC with one subnet, and port. */
export function minimalModel() {
  return {
    zones: [{ name: 'a', underlay: '172.16.1.0/24' }],
    hypervisors: [{ name: 'hv1', zone: 'a', tunnelIp: '172.16.1.11', datapathId: '0x11' }],
    vpcs: [{ name: 'v', vni: 7, subnets: [{ name: 's', cidr: '10.0.0.0/24', gateway: '10.0.0.1' }] }],
    ports: [{ name: 'p1', vpc: 'v', subnet: 's', mac: '02:00:00:00:00:01', ip: '10.0.0.5', hypervisor: 'hv1' }],
  };
}

const PORTS_PER_VPC = 3000;
const PORTS_PER_SUBNET = 250;
const PORTS_PER_HYPERVISOR = 20;

/**
 * A valid model document of `ports` ports, as a large site has: VPCs of at most 3,000 ports in /24
 * subnets of 250, one hypervisor per 20 ports, 4 ACL rules per VPC.
 */
export function generatedModel(ports: number) {
  const hypervisorCount = Math.max(1, Math.ceil(ports / PORTS_PER_HYPERVISOR));
  const vpcCount = Math.max(1, Math.ceil(ports / PORTS_PER_VPC));
  const hvIp = (h: number) => `172.16.${(h + 1) >> 8}.${(h + 1) & 0xff}`;
  return {
    zones: [{ name: 'zone-a', underlay: '172.16.0.0/16' }],
    hypervisors: Array.from({ length: hypervisorCount }, (_, h) => ({ name: `hv${h}`, zone: 'zone-a', tunnelIp: hvIp(h), datapathId: `0x${(h + 1).toString(16)}` })),
    vpcs: Array.from({ length: vpcCount }, (_, v) => ({
      name: `vpc${v}`,
      vni: v + 1,
      subnets: Array.from({ length: PORTS_PER_VPC / PORTS_PER_SUBNET }, (_, s) => ({ name: `s${s}`, cidr: `10.0.${s}.0/24`, gateway: `10.0.${s}.1` })),
      acls: [
        { name: 'web', subnet: 's1', direction: 'ingress', action: 'allow', protocol: 'tcp', ports: '80-443', remote: { subnet: 's0' } },
        { name: 'ping', subnet: 's1', direction: 'ingress', action: 'allow', protocol: 'icmp', remote: { subnet: 's0' } },
        { name: 'db', subnet: 's2', direction: 'ingress', action: 'allow', protocol: 'tcp', ports: 5432, remote: { subnet: 's1' } },
        { name: 'out', subnet: 's0', direction: 'egress', action: 'allow', remote: { cidr: '0.0.0.0/0' } },
      ],
    })),
    ports: Array.from({ length: ports }, (_, i) => {
      const v = Math.floor(i / PORTS_PER_VPC);
      const s = Math.floor((i % PORTS_PER_VPC) / PORTS_PER_SUBNET);
      const host = (i % PORTS_PER_SUBNET) + 2;
      const mac = [0x02, v >> 8, v & 0xff, s, host >> 8, host & 0xff].map((b) => b.toString(16).padStart(2, '0')).join(':');
      return { name: `p${i}`, vpc: `vpc${v}`, subnet: `s${s}`, mac, ip: `10.0.${s}.${host}`, hypervisor: `hv${Math.floor(i / PORTS_PER_HYPERVISOR)}` };
    }),
  };
}

/**
 * A Kubernetes ConfigMap volume in `dir`, laid out as the kubelet does: the files in a timestamped
 * directory, `..data` a symlink to it, and each file a symlink through `..data`. Returns the swap
 * that publishes new contents as the kubelet does: a new directory, a new `..data` renamed over
 * the old one (atomic), the old directory removed.
 */
export function configMapVolume(dir: string, files: Record<string, string>): (files: Record<string, string>) => void {
  let generation = 0;
  const publish = (contents: Record<string, string>) => {
    const old = generation > 0 ? `..2026_${generation}` : undefined;
    const next = `..2026_${++generation}`;
    mkdirSync(join(dir, next));
    for (const [name, text] of Object.entries(contents)) writeFileSync(join(dir, next, name), text);
    symlinkSync(next, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    if (old) rmSync(join(dir, old), { recursive: true });
  };
  publish(files);
  for (const name of Object.keys(files)) symlinkSync(join('..data', name), join(dir, name));
  return publish;
}

/** The first value of `values` that `wanted` accepts; fails after `ms`. */
export function firstMatching<T>(values: Observable<T>, wanted: (value: T) => boolean, ms = 10_000): Promise<T> {
  return firstValueFrom(values.pipe(filter(wanted), timeout(ms)));
}
