import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/paths';

function must(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${cwd} failed (${r.status}): ${r.stderr}${r.error ?? ''}`);
  return r.stdout;
}

/** exit code and combined output of a long run; async, so ava's own process stays responsive */
function run(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

// Issue 8: `npm test` failed in a clone with no test data beside it. This proves the committed
// tree (HEAD, not the work tree) builds and passes its unit suite with nothing next to it.
test('a clone of HEAD alone in a fresh folder builds and passes the unit suite', async (t) => {
  t.timeout(15 * 60_000);
  const dir = mkdtempSync(join(tmpdir(), 'zm-clone-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const clone = join(dir, 'zonemesh');
  const head = must('git', ['rev-parse', 'HEAD'], REPO_ROOT).trim();
  must('git', ['clone', '--quiet', '--no-checkout', REPO_ROOT, clone], dir);
  must('git', ['checkout', '--quiet', '--detach', head], clone);
  t.deepEqual(readdirSync(dir), ['zonemesh'], 'the clone has no sibling');

  // `npm ci` would download every package again, which is slow and needs the network; the
  // packages are not what this test is about, so the clone uses this checkout's node_modules.
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(clone, 'node_modules'));
  const build = await run(process.execPath, [join(clone, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], clone);
  t.is(build.code, 0, build.output);

  // The unit phase of scripts/test.sh: never test/integration/, so never this test again.
  const unit = must('bash', ['scripts/test-files.sh', 'unit'], clone).split('\n').filter(Boolean);
  t.true(unit.length > 0);
  t.false(unit.some((f) => f.startsWith('dist/test/integration/')));

  // files in parallel at ava's default concurrency, as `npm test` runs them
  const ava = await run(process.execPath, [join(clone, 'node_modules', 'ava', 'entrypoints', 'cli.mjs'), '--tap', ...unit], clone);
  const count = (what: string) => Number(new RegExp(`^# ${what} (\\d+)$`, 'm').exec(ava.output)?.[1] ?? NaN);
  // each failed test with its diagnostics (up to the next result), or else the end of the output
  const failures = ava.output.match(/^not ok .*\n(?:(?!(?:not )?ok \d).*\n)*/gm)?.join('') ?? ava.output.slice(-4000);
  t.is(ava.code, 0, failures);
  t.is(count('fail'), 0, failures);
  t.true(count('pass') > 0, ava.output.slice(-4000));
  t.log(`${count('pass')} unit tests passed in the clone, from ${unit.length} files`);
});
