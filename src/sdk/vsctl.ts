/** A hypervisor's OVSDB: its name (for errors and logs) and an ovs-vsctl `--db` target ('unix:/run/zm/hv1/db.sock'). */
export interface OvsdbTarget {
  readonly name: string;
  readonly ovsdb: string;
}

/**
 * ovs-vsctl against one hypervisor's OVSDB, run by the runtime so that apps stay free of I/O.
 * Inject it with `@inject(VSCTL)`. docs/pipeline.md says why ovs-vsctl and not an OVSDB client.
 */
export interface Vsctl {
  /**
   * Runs `ovs-vsctl --db=OVSDB --timeout=S ARGS…` (ARGS without `--db` and `--timeout`, usually
   * one `-- …` transaction) and resolves with its standard output. Rejects with a VsctlError.
   */
  run(target: OvsdbTarget, args: readonly string[]): Promise<string>;
}

/** DI token of the runtime's Vsctl; tests bind their own. */
export const VSCTL = Symbol.for('zonemesh.vsctl');

/** An ovs-vsctl run that failed: its hypervisor, its whole command line, and why (ovs-vsctl's stderr, or the exit, kill or spawn failure). */
export class VsctlError extends Error {
  override readonly name = 'VsctlError';
  constructor(
    readonly hypervisor: string,
    readonly command: readonly string[],
    readonly reason: string,
  ) {
    super(`hypervisor ${hypervisor}: ${command.join(' ')} failed: ${reason.trim()}`);
  }
}
