import { RunConfigError } from '../../src/runtime';

/** Every problem a run-config call reports, as 'path: problem' lines; [] when it accepts. */
export function configProblems(f: () => unknown): string[] {
  try {
    f();
    return [];
  } catch (e) {
    if (!(e instanceof RunConfigError)) throw e;
    return e.issues.map((i) => `${i.path}: ${i.problem}`);
  }
}
