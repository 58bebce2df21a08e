/**
 * The etcd model store at scale: a model of 10,000 ports (20 hypervisors, 4 VPCs of 2,500 ports)
 * imported into a fresh single-member etcd (tmpfs data dir), then the store's load time (range read
 * in pages, parse, validation) and the process's RSS before and after, and the time from one port
 * change written to etcd to the new model on model$.
 *
 *   npx tsc -p . && npm run bench:etcd     # -- --ports 10000 --changes 50
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { type NetworkModel, type VmPort, CURRENT_KEY, generationPrefix, validateModel } from '../src/model';
import { connectEtcd } from '../src/model/etcd-client';
import { EtcdModelStore } from '../src/model/etcd-store';
import { importModel } from '../src/model/etcd-transfer';
import { startEtcd } from '../test/helpers/etcd';

function bigModel(ports: number): NetworkModel {
  const vpcs = 4;
  const hypervisors = Array.from({ length: 20 }, (_, i) => ({ name: `hv${i}`, zone: i < 10 ? 'a' : 'b', tunnelIp: `172.16.${i < 10 ? 1 : 2}.${10 + i}` }));
  const perVpc = Math.ceil(ports / vpcs);
  return validateModel(
    {
      zones: [
        { name: 'a', underlay: '172.16.1.0/24' },
        { name: 'b', underlay: '172.16.2.0/24' },
      ],
      hypervisors,
      vpcs: Array.from({ length: vpcs }, (_, v) => ({
        name: `vpc${v}`,
        vni: 100 + v,
        subnets: [{ name: 'web', cidr: '10.0.0.0/16', gateway: '10.0.0.1' }],
        acls: [{ name: 'http', subnet: 'web', direction: 'ingress', action: 'allow', protocol: 'tcp', ports: 80 }],
      })),
      ports: Array.from({ length: ports }, (_, i) => {
        const v = Math.floor(i / perVpc);
        const k = (i % perVpc) + 2;
        return { name: `p${i}`, vpc: `vpc${v}`, subnet: 'web', mac: `02:00:00:0${v}:${((k >> 8) & 255).toString(16).padStart(2, '0')}:${(k & 255).toString(16).padStart(2, '0')}`, ip: `10.0.${k >> 8}.${k & 255}`, hypervisor: `hv${i % 20}` };
      }),
    },
    'bench',
  );
}

const mb = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MB`;
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { ports: { type: 'string', default: '10000' }, changes: { type: 'string', default: '50' } } });
  const ports = Number(values.ports);
  const model = bigModel(ports);
  const cluster = await startEtcd(1);
  const client = connectEtcd(cluster.endpoints);
  try {
    let t0 = process.hrtime.bigint();
    const imported = await importModel(client, model);
    console.log(`import: ${imported.keys} keys in ${ms(t0).toFixed(0)} ms`);
    global.gc?.();
    const before = process.memoryUsage();
    t0 = process.hrtime.bigint();
    const store = await EtcdModelStore.open(cluster.endpoints);
    const loadMs = ms(t0);
    global.gc?.();
    const after = process.memoryUsage();
    console.log(`load: ${store.current().ports.length} ports in ${loadMs.toFixed(0)} ms; RSS ${mb(before.rss)} before, ${mb(after.rss)} after; heap +${mb(after.heapUsed - before.heapUsed)} (the model and the stored values)`);

    const gen = (await client.kv.range({ key: Buffer.from(CURRENT_KEY) })).kvs[0]!.value.toString();
    const latencies: number[] = [];
    for (let i = 0; i < Number(values.changes); i++) {
      const port: VmPort = { ...store.current().ports[i]!, hypervisor: `hv${(i + 1) % 20}` };
      const seen = new Promise<void>((resolve) => {
        const sub = store.model$.subscribe(() => {
          if (store.current().ports.some((p) => p.name === port.name && p.hypervisor === port.hypervisor)) {
            queueMicrotask(() => sub.unsubscribe());
            resolve();
          }
        });
      });
      t0 = process.hrtime.bigint();
      await client.put(`${generationPrefix(gen)}ports/${port.name}`).value(JSON.stringify(port));
      await seen;
      latencies.push(ms(t0));
    }
    latencies.sort((a, b) => a - b);
    const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(1);
    console.log(`one port change, put to model$: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms (${latencies.length} changes)`);
    console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, load average ${loadavg()[0]!.toFixed(1)}`);
    await store.close();
  } finally {
    client.close();
    await cluster.stop();
  }
}

void main();
