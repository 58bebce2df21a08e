import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

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
/** Test data taken from elsewhere; test/fixtures/README.md says where each file came from. */
const FIXTURES_DIR = join(REPO_ROOT, 'test', 'fixtures');
/** Ryu's OF1.3 parser vectors: NAME.packet (the wire bytes) with NAME.packet.json (Ryu's decode) */
export const RYU_OF13_DIR = join(FIXTURES_DIR, 'ryu-of13');
/** OVS lab pipelines: flowmods-*.tsv ("flow text<TAB>OVS-encoded FLOW_MOD hex") and their dump-*.txt */
export const OVS_LAB_DIR = join(FIXTURES_DIR, 'ovs-lab');
