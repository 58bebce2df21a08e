import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

function findRepoRoot(from: string): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${from}`);
    dir = up;
  }
  return dir;
}

export const REPO_ROOT = findRepoRoot(__dirname);
/** shared/ lies beside the repository, in CI as on a developer's machine */
export const SHARED_DIR = process.env.ZONEMESH_SHARED ?? resolve(REPO_ROOT, '..', 'shared');
export const CONFORMANCE_DIR = join(SHARED_DIR, 'conformance');
export const OF13_DIR = join(CONFORMANCE_DIR, 'of13');
export const OVS_LAB_DIR = join(SHARED_DIR, 'ovs-lab');
