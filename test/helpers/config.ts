import { RunConfigError } from '../../src/runtime';
import { AppSettingsError } from '../../src/sdk';

/** Every problem a run-config or app-settings check reports, as 'path: problem' lines; [] when it accepts. */
export function configProblems(f: () => unknown): string[] {
  try {
    f();
    return [];
  } catch (e) {
    if (!(e instanceof RunConfigError || e instanceof AppSettingsError)) throw e;
    return e.issues.map((i) => `${i.path}: ${i.problem}`);
  }
}
