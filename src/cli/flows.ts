import { parseArgs } from 'node:util';
import { ControlSocketError, queryControl, type SwitchFlows } from '../runtime';
import { CliError, EXIT, UsageError, type Command } from './command';
import { DEFAULT_CONTROL_PATH, controlPath } from './run';

export const flowsCommand: Command = {
  usage: 'flows [--dpid DPID] [--control unix:PATH] [--json]',
  summary: `prints the desired and the installed flows of the switches connected to a running 'zonemesh run' (asked on its control socket, default ${DEFAULT_CONTROL_PATH}); exit 1 when a switch is out of sync`,
  run: async (args) => {
    let values;
    try {
      ({ values } = parseArgs({ args, options: { dpid: { type: 'string' }, control: { type: 'string' }, json: { type: 'boolean' } } }));
    } catch (e) {
      throw new UsageError((e as Error).message.split('. ')[0]!);
    }
    const path = controlPath(values.control ?? DEFAULT_CONTROL_PATH);
    let response;
    try {
      response = await queryControl(path, { op: 'flows', ...(values.dpid !== undefined && { dpid: values.dpid }) });
    } catch (e) {
      if (e instanceof ControlSocketError) throw new CliError(e.message);
      throw new CliError(`cannot ask the controller at ${path}: ${(e as Error).message} (is 'zonemesh run' running, with this --control?)`);
    }
    if (!response.ok) throw new CliError(response.error);
    if (values.json) console.log(JSON.stringify(response.switches, null, 2));
    else console.log(response.switches.map(render).join('\n\n') || 'no switch connected');
    return response.switches.every(inSync) ? EXIT.ok : EXIT.problems;
  },
};

const inSync = (s: SwitchFlows): boolean => s.diff.deletes + s.diff.modifies + s.diff.adds === 0;

function render(s: SwitchFlows): string {
  const { deletes, modifies, adds } = s.diff;
  const state = inSync(s) ? 'in sync' : `out of sync: ${deletes} to delete, ${modifies} to modify, ${adds} to add`;
  return [
    `switch ${s.dpid}: ${state}`,
    'pipeline:',
    ...s.tables.map((t) => `  ${t}`),
    `desired flows (${s.desired.length}):`,
    ...s.desired,
    `installed flows (${s.installed.length}):`,
    ...s.installed,
  ].join('\n');
}
