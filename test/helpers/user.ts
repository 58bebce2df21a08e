import { randomBytes } from 'node:crypto';
import { run } from './run';

/** A local user made for one test file, for checks that another user cannot do something. */
export interface ThrowawayUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** `runuser -u NAME -- command args…`, resolving with stdout; rejects like `run` */
  run(command: string, args: readonly string[], timeoutMs?: number): Promise<string>;
  /** removes the user and its home (`userdel -r`) */
  remove(): Promise<void>;
}

/** `useradd`s a user `zmtest<random>` with a home; the caller removes it (test.after.always). Needs root. */
export async function createThrowawayUser(): Promise<ThrowawayUser> {
  const name = `zmtest${randomBytes(4).toString('hex')}`;
  // another test file may be editing /etc/passwd at the same moment: useradd fails on its lock, so try again
  for (let attempt = 1; ; attempt++) {
    try {
      await run('useradd', ['--create-home', '--shell', '/usr/sbin/nologin', name]);
      break;
    } catch (e) {
      if (attempt === 5) throw e;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
  const [uid, gid] = (await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])])).map((r) => Number(r.stdout.trim())) as [number, number];
  return {
    name,
    uid,
    gid,
    run: async (command, args, timeoutMs) => (await run('runuser', ['-u', name, '--', command, ...args], { timeoutMs })).stdout,
    remove: async () => void (await run('userdel', ['-r', name]).catch(() => run('userdel', ['-r', '-f', name]))),
  };
}
