import { execFile } from 'node:child_process';
import { type OvsdbTarget, type Vsctl, VsctlError } from '../sdk/vsctl';

/** ovs-vsctl's own wait for OVSDB (and ovs-vswitchd), in seconds */
const VSCTL_TIMEOUT_S = 10;
/** then the process is killed: a wedged ovs-vsctl does not hold a provisioning retry forever */
const KILL_AFTER_MS = 15_000;
/** ovs-vsctl's answers here are port lists: far below this */
const MAX_OUTPUT_BYTES = 1 << 20;

/** Vsctl by the ovs-vsctl program, one process per call. */
export class ExecVsctl implements Vsctl {
  run(target: OvsdbTarget, args: readonly string[]): Promise<string> {
    const argv = [`--db=${target.ovsdb}`, `--timeout=${VSCTL_TIMEOUT_S}`, ...args];
    return new Promise((resolve, reject) => {
      execFile('ovs-vsctl', argv, { timeout: KILL_AFTER_MS, maxBuffer: MAX_OUTPUT_BYTES }, (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const reason = err.killed ? `no answer within ${KILL_AFTER_MS} ms (killed)` : stderr.trim() || err.message;
        reject(new VsctlError(target.name, ['ovs-vsctl', ...argv], reason));
      });
    });
  }
}
