import { UsageError, defineCommand } from './command';
import { API_OPTIONS, ApiClient, DEFAULT_API, reported } from './port';

/** `zonemesh fip bind|unbind|show`: rebinding a floating IP through the API, with the revision read. */
export const fipCommand = defineCommand({
  name: 'fip',
  operands: 'bind|unbind|show IP',
  summary: "binds a floating IP to a port, unbinds or shows it, through the API of 'zonemesh api'",
  description:
    "Binds a floating IP to the port --port names (rebinding it when it is bound elsewhere), unbinds it (the address stays held), or shows it, through the API of 'zonemesh api'. A bind or unbind reads the floating IP and writes it back with the revision read: a change made meanwhile is refused (409), not overwritten. Prints the floating IP as stored, or the problem.",
  subcommands: [
    { usage: 'bind IP', summary: 'binds it to the port --port names' },
    { usage: 'unbind IP', summary: 'unbinds it' },
    { usage: 'show IP', summary: 'prints it' },
  ],
  options: [{ name: 'port', value: 'PORT', description: 'bind: the VM port', default: 'none' }, ...API_OPTIONS] as const,
  positionals: true,
  exits: { problems: 'the API refused the change (4xx)', failed: 'the API could not be asked, or failed (5xx)' },
  run: async ({ values: v, positionals: [action, ...positionals] }) => {
    if (!['bind', 'unbind', 'show'].includes(action ?? '')) throw new UsageError(`'fip ${action ?? ''}': say bind, unbind or show`);
    if (positionals.length !== 1) throw new UsageError(`fip ${action} takes one IP`);
    if ((action === 'bind') !== (v.port !== undefined)) throw new UsageError(action === 'bind' ? 'fip bind needs --port PORT' : `fip ${action} takes no --port`);
    const api = new ApiClient(v.api ?? DEFAULT_API, v['token-file'], v.ca);
    const path = `/v1/floatingIps/${encodeURIComponent(positionals[0]!)}`;
    let res = await api.call('GET', path);
    if (res.status === 200 && action !== 'show') {
      const { port: _, ...fip } = res.body as Record<string, unknown>;
      res = await api.write('PUT', path, action === 'bind' ? { ...fip, port: v.port } : fip, {}, (stored) => stored.port === (action === 'bind' ? v.port : undefined));
    }
    return reported('fip', res);
  },
});
