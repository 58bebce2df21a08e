import { ControlSocketError, parseDpid, queryControl, type SwitchFlows } from '../runtime';
import { CliError, EXIT, UsageError, defineCommand } from './command';
import { DEFAULT_CONTROL_PATH, controlPath } from './run';

export const flowsCommand = defineCommand({
  name: 'flows',
  summary: "prints the desired and the installed flows of the switches of a running 'zonemesh run', and its role at each",
  description:
    "Asks a running 'zonemesh run' on its control socket for the desired and the installed flows of its switches, and prints them ovs-ofctl style, " +
    "with its role at each switch (MASTER, SLAVE or EQUAL, as the switch last told it), the switch's generation id, and which controller the election says is master (with --zone).",
  options: [
    { name: 'dpid', value: 'DPID', description: 'only the switch with this datapath id: 0x11, 16 hex digits as ovs-ofctl prints them, or decimal', default: 'every switch' },
    { name: 'control', value: 'unix:PATH', description: "the control socket of the 'zonemesh run' to ask", default: DEFAULT_CONTROL_PATH },
    { name: 'json', description: 'prints JSON instead of text', default: 'off' },
  ] as const,
  positionals: false,
  exits: { problems: 'a switch is out of sync', failed: 'the controller could not be asked, or the switch is not connected' },
  run: async ({ values }) => {
    if (values.dpid !== undefined && parseDpid(values.dpid) === undefined) throw new UsageError(`--dpid: '${values.dpid}' is not a datapath id`);
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
});

const inSync = (s: SwitchFlows): boolean => s.diff.deletes + s.diff.modifies + s.diff.adds === 0;

function render(s: SwitchFlows): string {
  const { deletes, modifies, adds } = s.diff;
  const state = inSync(s) ? 'in sync' : `out of sync: ${deletes} to delete, ${modifies} to modify, ${adds} to add`;
  const role = [`role ${s.role}`, ...(s.generationId !== undefined ? [`generation ${s.generationId}`] : []), ...(s.master !== undefined ? [`master ${s.master}`] : [])].join(', ');
  return [
    `switch ${s.dpid} (${role}): ${state}`,
    'pipeline:',
    ...s.tables.map((t) => `  ${t}`),
    `desired flows (${s.desired.length}):`,
    ...s.desired,
    `installed flows (${s.installed.length}):`,
    ...s.installed,
  ].join('\n');
}
