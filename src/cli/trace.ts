import { validateModel } from '../model';
import { decodeMessageOrThrow, mergeMultipartReplies, type FlowStats, type MultipartReply } from '../openflow';
import { ControlSocketError, parseDpid, queryControl, type ControlRequest, type InstalledResponse, type InstalledSwitch, type ResponseTo } from '../runtime';
import { CliError, EXIT, UsageError, defineCommand } from './command';
import { DEFAULT_CONTROL_PATH, controlPath } from './run';
import { LIVE_DSCP, countedSteps, frameOf } from './trace-live';
import { TraceError, Tracer, formatTrace, pipelineOf, type InstalledSnapshot, type TraceProto, type TraceQuery, type TraceResult } from './tracer';

const PROTOS: readonly TraceProto[] = ['tcp', 'udp', 'icmp', 'arp'];

export const traceCommand = defineCommand({
  name: 'trace',
  summary: 'follows a packet from a VM through the flows installed on the switches, and says where it ends',
  description:
    "Asks a running 'zonemesh run' for the flows installed on every switch (read from them now, not the desired state) and the model, and simulates a packet " +
    'from VM --from to --to through them, across the tunnel to the destination hypervisor: each table with its flow and the model object that owns it, then ' +
    'the verdict (delivered to which port on which hypervisor, answered by the bridge, or dropped by what). The VM resolves its next hop with ARP first, as a real one would (docs/trace.md).',
  options: [
    { name: 'from', value: 'VM', required: true, description: 'the VM port of the model that sends the packet' },
    { name: 'to', value: 'IP[:PORT]', required: true, description: 'the destination IPv4 address, and for tcp or udp its port' },
    { name: 'proto', value: 'tcp|udp|icmp|arp', description: 'the protocol: an echo request for icmp, a request for the address for arp', default: 'tcp with a PORT, else icmp' },
    { name: 'ct', value: 'new|established', description: "the conntrack state the ACL sees (ofproto/trace's --ct-next)", default: 'new' },
    { name: 'ttl', value: 'N', description: 'the IPv4 TTL the VM sends', default: '64' },
    { name: 'control', value: 'unix:PATH', description: "the control socket of the 'zonemesh run' to ask", default: DEFAULT_CONTROL_PATH },
    { name: 'live', description: "also sends the packet for real, marked with IP DSCP 43, into the source switch's pipeline, and says which traced flows counted it", default: 'off' },
    { name: 'json', description: 'prints the trace as JSON', default: 'off' },
  ] as const,
  positionals: false,
  exits: { ok: 'traced (whatever the verdict)', problems: 'the VM is not in the model', failed: "the controller could not be asked, or a switch on the path is not connected to it" },
  run: async ({ values }) => {
    const query = queryOf(values);
    const path = controlPath(values.control ?? DEFAULT_CONTROL_PATH);
    const response = await ask(path, { op: 'installed' });
    try {
      const result = tracerOf(response).trace(query);
      if (values.live) await goLive(path, result, snapshotsOf(response));
      console.log(values.json ? JSON.stringify(result, null, 2) : formatTrace(result));
      return EXIT.ok;
    } catch (e) {
      if (!(e instanceof TraceError)) throw e;
      if (e.kind === 'unknown_vm') {
        console.error(`zonemesh trace: ${e.message}`);
        return EXIT.problems;
      }
      throw new CliError(e.message);
    }
  },
});

function queryOf(values: { from?: string; to?: string; proto?: string; ct?: string; ttl?: string }): TraceQuery {
  if (values.from === undefined) throw new UsageError('--from VM is required');
  if (values.to === undefined) throw new UsageError('--to IP[:PORT] is required');
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d+))?$/.exec(values.to);
  if (!m || m[1]!.split('.').some((b) => Number(b) > 255)) throw new UsageError(`--to: '${values.to}' is not IP or IP:PORT (an IPv4 address, then a port 1..65535)`);
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && (port < 1 || port > 65535)) throw new UsageError(`--to: port ${m[2]} is outside 1..65535`);
  const proto = (values.proto ?? (port === undefined ? 'icmp' : 'tcp')) as TraceProto;
  if (!PROTOS.includes(proto)) throw new UsageError(`--proto: '${values.proto}' is not one of ${PROTOS.join(', ')}`);
  if (port !== undefined && (proto === 'icmp' || proto === 'arp')) throw new UsageError(`--to: ${proto} has no port`);
  const ct = values.ct ?? 'new';
  if (ct !== 'new' && ct !== 'established') throw new UsageError(`--ct: '${ct}' is not new or established`);
  const ttl = Number(values.ttl ?? '64');
  if (!/^\d+$/.test(values.ttl ?? '64') || ttl > 255) throw new UsageError(`--ttl: '${values.ttl}' is not 0..255`);
  return { from: values.from, to: m[1]!, proto, ...(port !== undefined && { port }), ct, ttl };
}

async function ask<R extends ControlRequest>(path: string, request: R): Promise<Extract<ResponseTo<R>, { ok: true }>> {
  let response;
  try {
    response = await queryControl(path, request);
  } catch (e) {
    if (e instanceof ControlSocketError) throw new CliError(e.message);
    throw new CliError(`cannot ask the controller at ${path}: ${(e as Error).message} (is 'zonemesh run' running, with this --control?)`);
  }
  if (!response.ok) throw new CliError(response.error);
  return response as Extract<ResponseTo<R>, { ok: true }>;
}

/** how long --live waits for the counters of every traced flow to move */
const LIVE_WAIT_MS = 3_000;
const LIVE_POLL_MS = 200;

/** Sends the traced packet for real and marks each step with what its flow counted meanwhile. */
async function goLive(path: string, result: TraceResult, before: ReadonlyMap<bigint, InstalledSnapshot>): Promise<void> {
  const first = result.hops[0]!;
  await ask(path, { op: 'packet-out', dpid: first.dpid, inPort: first.inPort, data: frameOf(result.packet).toString('hex') });
  const started = Date.now();
  let counted: number[][];
  for (;;) {
    counted = countedSteps(result, before, snapshotsOf(await ask(path, { op: 'installed' })));
    if (counted.flat().every((n) => n > 0) || Date.now() - started > LIVE_WAIT_MS) break;
    await new Promise((r) => setTimeout(r, LIVE_POLL_MS));
  }
  result.hops.forEach((hop, i) => hop.steps.forEach((step, j) => (step.live = counted[i]![j]!)));
  result.live = { dscp: result.packet.eth_type === 0x0800 ? LIVE_DSCP : null, allSeen: counted.flat().every((n) => n > 0), waitedMs: Date.now() - started };
}

function snapshotsOf(installed: Extract<InstalledResponse, { ok: true }>): Map<bigint, InstalledSnapshot> {
  return new Map(installed.switches.map((s) => snapshotOf(s)).map((s) => [s.dpid, s]));
}

/** A tracer over what the controller answered: the model in force and every switch's installed flows. */
export function tracerOf(installed: Extract<InstalledResponse, { ok: true }>): Tracer {
  if (!installed.model) throw new CliError('the controller runs without a model: there is nothing to trace');
  if (!installed.switches[0]) throw new CliError('no switch is connected to the controller');
  return new Tracer(validateModel(installed.model, "the controller's model"), pipelineOf(installed.switches[0].tables), snapshotsOf(installed));
}

/** A switch's answer decoded: its flows and groups from the OFPMP_FLOW and OFPMP_GROUP_DESC messages, its ports by name. */
function snapshotOf(s: InstalledSwitch): InstalledSnapshot {
  const dpid = parseDpid(s.dpid);
  if (dpid === undefined) throw new CliError(`the controller answered a switch '${s.dpid}' that is not a datapath id`);
  const bodyOf = (hex: readonly string[]) => {
    const parts = hex.map((h) => decodeMessageOrThrow(Buffer.from(h, 'hex')) as MultipartReply);
    return parts.length ? mergeMultipartReplies(parts).body : undefined;
  };
  const flowBody = bodyOf(s.flowStats);
  const flows: FlowStats[] = flowBody?.mpType === 'FLOW' ? flowBody.flows : [];
  const groupBody = s.groupDesc && bodyOf(s.groupDesc);
  const groups = groupBody?.mpType === 'GROUP_DESC' ? groupBody.groups : undefined;
  return { dpid, flows, ...(groups && { groups }), ports: new Map(s.ports.map((p) => [p.name, p.portNo])) };
}
