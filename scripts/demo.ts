/**
 * `npm run demo` (through scripts/demo.sh, which installs, builds and runs this as root):
 * the multi-zone VPC overlay of a model on real Open vSwitch, its VMs addressed by DHCP (dhclient)
 * from the controller's dhcp-responder and, on dual-stack subnets, by SLAAC from its router
 * advertisements.
 *
 *   node dist/scripts/demo.js [up] [--model FILE]   scenario up, controller up (left running), checks
 *   node dist/scripts/demo.js check                 the checks again, on the running demo
 *   node dist/scripts/demo.js down                  controller stopped, scenario torn down
 *
 * The scenario is mininet/zonemesh_net.py's (one netns with its own OVS per hypervisor), with its
 * default names (prefix zm, state /tmp/zm/zm; ZM_PREFIX and ZM_STATE change them) so that its
 * commands work without options. The demo itself is scripts/overlay-demo.ts.
 * Exit status: 0 when the leases, SLAAC, both ping matrices (IPv4, IPv6) and north-south (on a
 * model with external networks) match the model and no underlay or load-balancer check fails.
 */
import { join, resolve } from 'node:path';
import { REPO_ROOT } from '../test/helpers/paths';
import { demoCheck, demoDown, demoUp, type DemoOptions } from './overlay-demo';

const prefix = process.env.ZM_PREFIX ?? 'zm';
const opts: DemoOptions = {
  prefix,
  stateDir: process.env.ZM_STATE ?? `/tmp/zm/${prefix}`,
  out: (line) => console.log(line),
  color: process.stdout.isTTY,
};
const DEFAULT_MODEL = join(REPO_ROOT, 'models', 'two-zones.yaml');
const USAGE = 'usage: npm run demo -- [up [--model FILE] | check | down]';

async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  const command = args[0] && !args[0].startsWith('-') ? args.shift()! : 'up';
  let model = DEFAULT_MODEL;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--model' && args[i + 1]) model = args[++i]!;
    else {
      console.error(`${USAGE}  (unknown: ${args[i]})`);
      return 2;
    }
  }
  // npm runs scripts in the package root; a relative --model is the user's, from where they typed
  if (command === 'up') return (await demoUp(resolve(process.env.INIT_CWD ?? process.cwd(), model), opts)).ok ? 0 : 1;
  if (command === 'check') return (await demoCheck(opts)).ok ? 0 : 1;
  if (command === 'down') return demoDown(opts).then(() => 0);
  console.error(`${USAGE}  (unknown command ${command})`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`demo failed: ${(e as Error)?.stack ?? String(e)}`);
    console.error('tear down: npm run demo -- down');
    process.exit(1);
  },
);
