import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from './paths';
import { run, type RunResult } from './run';

/**
 * An app package under examples/, built and tested as its own users would: `npm install` there
 * links node_modules/zonemesh to the repository (its `file:../..` dependency), and tsc and ava come
 * from the repository's node_modules, which Node and tsc find by walking up, so no registry is
 * needed. The repository must be built first (`npx tsc -p .`): the package reads zonemesh's dist/.
 */
export class ExamplePackage {
  readonly dir: string;

  constructor(name: string) {
    this.dir = join(REPO_ROOT, 'examples', name);
  }

  /** what `npm install` would make of `"zonemesh": "file:../.."` */
  linkZonemesh(): void {
    const link = join(this.dir, 'node_modules', 'zonemesh');
    if (existsSync(link)) return;
    mkdirSync(join(this.dir, 'node_modules'), { recursive: true });
    symlinkSync(relative(join(this.dir, 'node_modules'), REPO_ROOT), link);
  }

  build(): Promise<RunResult> {
    this.linkZonemesh();
    return run(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', this.dir], { timeoutMs: 120_000 });
  }

  /** the package's own ava tests (built first) */
  test(): Promise<RunResult> {
    return run(process.execPath, [join(REPO_ROOT, 'node_modules', 'ava', 'entrypoints', 'cli.mjs')], { cwd: this.dir, timeoutMs: 120_000 });
  }
}
