import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NORTH_SOUTH_APP_ID, gatewayPortName, gatewaysGroups } from '../../src/apps/north-south';
import { formatBucket } from '../../src/openflow/text/multipart';
import { tableMissFlows } from '../../src/sdk/flow';
import { flowsOn } from '../../src/sdk/incremental';
import { REPO_ROOT } from '../helpers/paths';
import { compileAcl } from '../../src/apps/acl';
import { COMPILERS, NORTH_SOUTH_COMPILERS, NORTH_SOUTH_PIPELINE, PIPELINE, flowText, ipv4Only, northSouth, northSouthWithHv5, ownersText, twoZones, viewOf, withRemoteFamilyRules } from './helpers';

/**
 * Every app's flows for the demo model (models/two-zones.yaml, dual-stack, ports numbered 1, 2, …
 * per hypervisor), and for the same without IPv6 (`ipv4Only`, files `APP-ipv4-only.txt`), as
 * dump-flows text with table names, one block per owner and switch. A change shows
 * up as a readable diff; after reviewing it, `UPDATE_GOLDEN=1 npx ava dist/test/apps/golden.test.js`.
 */
const GOLDEN_DIR = join(REPO_ROOT, 'test', 'apps', 'golden');

function golden(name: string, actual: string): { expected: string; actual: string } {
  const file = join(GOLDEN_DIR, `${name}.txt`);
  if (process.env.UPDATE_GOLDEN) writeFileSync(file, actual);
  return { expected: readFileSync(file, 'utf8'), actual };
}

const model = twoZones();
const view = viewOf(model);
const ipv4OnlyView = viewOf(ipv4Only(model));
const hvName = (dpid: bigint) => model.hypervisors.find((h) => h.datapathId === dpid)!.name;

for (const [app, compile] of Object.entries(COMPILERS)) {
  test(`${app}: golden flows for the two-zone demo`, (t) => {
    const { expected, actual } = golden(app, ownersText(compile(PIPELINE, view), hvName));
    t.is(actual, expected);
  });
  test(`${app}: golden flows for the two-zone demo without IPv6`, (t) => {
    const { expected, actual } = golden(`${app}-ipv4-only`, ownersText(compile(PIPELINE, ipv4OnlyView), hvName));
    t.is(actual, expected);
  });
}

test('acl: golden flows of rules without remote (both families) and with a CIDR of each family, on hv1', (t) => {
  const hv1 = model.hypervisors.find((h) => h.name === 'hv1')!.datapathId;
  const rules = flowsOn(compileAcl(PIPELINE, viewOf(withRemoteFamilyRules(model))).get('vpc:blue'), hv1).filter((f) => f.priority > 59_997);
  const { expected, actual } = golden('acl-remote-families', `${rules.map((f) => flowText(f)).join('\n')}\n`);
  t.is(actual, expected);
});

test('north-south: golden flows for the north-south model', (t) => {
  const m = northSouth();
  const name = (dpid: bigint) => m.hypervisors.find((h) => h.datapathId === dpid)!.name;
  const { expected, actual } = golden('north-south', ownersText(NORTH_SOUTH_COMPILERS['north-south']!(NORTH_SOUTH_PIPELINE, viewOf(m)), name, NORTH_SOUTH_PIPELINE));
  t.is(actual, expected);
});

test('north-south: golden gateway groups for the north-south model with hv5, a hypervisor that is no gateway (the gateways have none)', (t) => {
  const m = northSouthWithHv5();
  // the BFD ports numbered 100 + the peer's position in the model
  const ofport = (_dpid: bigint, port: string) => 100 + m.hypervisors.findIndex((h) => gatewayPortName(h) === port);
  const text = [...gatewaysGroups(NORTH_SOUTH_APP_ID, m, ofport)]
    .map(([dpid, g]) => `# ${m.hypervisors.find((h) => h.datapathId === dpid)!.name}\ngroup_id=0x${g.groupId.toString(16)},type=${g.groupType},${g.buckets.map(formatBucket).join(',')}`)
    .join('\n');
  const { expected, actual } = golden('north-south-gateway-groups', `${text}\n`);
  t.is(actual, expected);
});

test('pipeline: table layout and miss flows', (t) => {
  const { expected, actual } = golden('pipeline', `${PIPELINE.describe()}\n${tableMissFlows(PIPELINE).map((f) => flowText(f)).join('\n')}\n`);
  t.is(actual, expected);
});
