/**
 * MacTable learn + lookup, as l2-learning does per packet-in: `set` of the source, `get` of the
 * destination, over a working set of hosts; and the same under a flood of new source MACs.
 *
 *   npx tsc -p . && node dist/bench/mac-table.js      # -- --hosts 1000 --rounds 5
 */
import { parseArgs } from 'node:util';
import { MacTable } from '../src/sdk/mac-table';

const { values } = parseArgs({ options: { hosts: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '5' }, ops: { type: 'string', default: '20000000' } } });
const hosts = Number(values.hosts);
const rounds = Number(values.rounds);
const ops = Number(values.ops);

/** one 12-byte dst+src header per host pair, packed in one buffer as frames sit in a socket chunk */
function frames(count: number, seed: number): Buffer {
  const buf = Buffer.alloc(count * 12);
  for (let i = 0; i < count; i++) {
    const dst = (i * 7919 + seed) % count;
    buf.writeUIntBE(0x020000000000 + dst, i * 12, 6);
    buf.writeUIntBE(0x020000000000 + i, i * 12 + 6, 6);
  }
  return buf;
}

/** best ns per learn+lookup over `rounds` */
function measure(name: string, makeTable: () => MacTable, buf: Buffer, count: number): void {
  let best = Infinity;
  let sink = 0;
  for (let r = 0; r < rounds; r++) {
    const table = makeTable();
    const start = process.hrtime.bigint();
    for (let n = 0, i = 0; n < ops; n++, i = i + 1 === count ? 0 : i + 1) {
      table.set(buf, i * 12 + 6, (i & 31) + 1);
      sink += table.get(buf, i * 12) ?? 0;
    }
    best = Math.min(best, Number(process.hrtime.bigint() - start) / ops);
  }
  console.log(`${name}: ${best.toFixed(1)} ns per learn+lookup (best of ${rounds}, ${ops} ops)${sink === -1 ? '' : ''}`);
}

measure(`${hosts} hosts`, () => new MacTable(), frames(hosts, 1), hosts);
// every source new for a long while: 1M distinct MACs cycled through
const flood = 1 << 20;
measure(`flood of ${flood} distinct MACs`, () => new MacTable(), frames(flood, 3), flood);
