/**
 * What loading a model file costs the running controller: load time, peak RSS and the longest
 * event-loop stall, for generated models of N ports, loaded two ways:
 *   - event loop: `loadModelFile` on the main thread (the startup load; every reload before the
 *     parse moved to a worker)
 *   - worker: `FileModelStore.reload()` (every reload now: parsed in a worker thread)
 * Each measurement runs in a fresh process, so its peak RSS is its own. The first line is the noise
 * floor: the longest event-loop delay of the same process loading nothing (mode idle).
 *
 *   npx tsc -p . && npm run bench:model     # -- --ports 1000,10000,60000
 *
 * Model per N ports: `generatedModel` (test/helpers/model.ts), written by the `yaml` package's
 * stringify (block style, as tools write it).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { DEFAULT_MODEL_MAX_BYTES, FileModelStore, formatBytes, loadModelFile } from '../src/model';
import { generatedModel } from '../test/helpers/model';

interface Measurement {
  mode: string;
  ports: number;
  loadMs: number;
  maxDelayMs: number;
  baselineRssMb: number;
  peakRssMb: number;
}

const MB = 1024 * 1024;

/** One measurement, in this (fresh) process: `file` holds the model to load, `small` a tiny one. */
async function measure(mode: string, file: string, small: string, ports: number): Promise<Measurement> {
  // the worker mode's store starts from the small model, as a running controller would
  const store = mode === 'worker' ? new FileModelStore(small, { maxBytes: Math.max(statSync(file).size, DEFAULT_MODEL_MAX_BYTES) }) : undefined;
  if (mode !== 'worker') loadModelFile(small); // the same modules loaded as in the worker mode
  const baselineRssMb = process.memoryUsage.rss() / MB;
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  await delay(100);
  const started = performance.now();
  if (store) {
    copyFileSync(file, small);
    if (!(await store.reload())) throw new Error('the worker rejected the model');
    if (store.current().ports.length !== ports) throw new Error('wrong model');
  } else if (mode === 'event-loop') {
    if (loadModelFile(file, Infinity).ports.length !== ports) throw new Error('wrong model');
  }
  const loadMs = performance.now() - started;
  await delay(100); // the histogram records a stall when the loop comes back
  loop.disable();
  store?.close();
  return { mode, ports, loadMs, maxDelayMs: loop.max / 1e6, baselineRssMb, peakRssMb: (process.resourceUsage().maxRSS * 1024) / MB };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { ports: { type: 'string', default: '1000,10000' }, one: { type: 'string', multiple: true } } });
  if (values.one) {
    const [mode, file, small, ports] = values.one;
    process.stdout.write(JSON.stringify(await measure(mode!, file!, small!, Number(ports))));
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'zm-bench-model-'));
  try {
    console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}, node ${process.version}`);
    const once = (mode: string, file: string, small: string, ports: number): Measurement =>
      JSON.parse(execFileSync(process.execPath, [__filename, '--one', mode, '--one', file, '--one', small, '--one', String(ports)], { encoding: 'utf8' })) as Measurement;
    const small = join(dir, 'running.yaml');
    writeFileSync(small, stringify(generatedModel(1)));
    console.log(`max event-loop delay loading nothing (noise floor): ${once('idle', small, small, 1).maxDelayMs.toFixed(0)} ms`);
    console.log('| ports | file size | mode | load time | max event-loop delay | peak RSS (baseline) |');
    console.log('|---:|---:|---|---:|---:|---:|');
    for (const ports of values.ports.split(',').map(Number)) {
      const file = join(dir, `model-${ports}.yaml`);
      writeFileSync(file, stringify(generatedModel(ports)));
      for (const mode of ['event-loop', 'worker']) {
        writeFileSync(small, stringify(generatedModel(1)));
        const m = once(mode, file, small, ports);
        console.log(
          `| ${ports.toLocaleString('en')} | ${formatBytes(statSync(file).size)} | ${mode} | ${m.loadMs.toFixed(0)} ms | ${m.maxDelayMs.toFixed(0)} ms | ${m.peakRssMb.toFixed(0)} MB (${m.baselineRssMb.toFixed(0)} MB) |`,
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
