import test from 'ava';
import { spawnSync } from 'node:child_process';
import { REPO_ROOT } from '../helpers/paths';

/**
 * Users clone the repository alone, so nothing may reach into a folder beside it. The pattern's
 * brackets keep this file from matching itself.
 */
const SIBLING_FOLDER = String.raw`\.\./shared|/work/[s]hared|shared/(conformance|ovs-lab)|SHARED[_]DIR|ZONEMESH[_]SHARED`;

test('no code, test, bench, script or CI file refers to a folder beside the repository', (t) => {
  const r = spawnSync('git', ['grep', '-nE', SIBLING_FOLDER, '--', 'src', 'test', 'bench', 'scripts', '.ci', 'mininet'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  });
  // git grep exits 1 when nothing matches, 0 with matches, above 1 on an error
  t.is(r.status, 1, r.stdout + r.stderr);
});
