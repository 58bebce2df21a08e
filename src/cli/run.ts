import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { APP_REGISTRY, bindAppServices } from '../apps/registry';
import { DEFAULT_LISTEN, RunConfigError, loadRunConfig, validateRunConfig, type RunConfig } from '../config';
import { Runtime } from '../sdk';
import { CliError, EXIT, UsageError, type Command } from './command';

/** Where `run` opens its control endpoint and `flows` looks for it, unless told otherwise. */
export const DEFAULT_CONTROL_PATH = join(tmpdir(), `zonemesh-${userInfo().uid}.sock`);

/** 'unix:PATH' or a bare path */
export function controlPath(text: string): string {
  return text.startsWith('unix:') ? text.slice(5) : text;
}

export const runCommand: Command = {
  usage: 'run [--config FILE] [--apps A,B,...] [--listen [tcp:]HOST:PORT|unix:PATH ...] [--dial unix:PATH|tcp:HOST:PORT ...] [--model FILE] [--control unix:PATH] [--log-level LEVEL]',
  summary: `runs the controller with the apps named (known: ${Object.keys(APP_REGISTRY).join(', ')}); JSON logs on stdout; SIGINT/SIGTERM stop it, switches keep their flows`,
  run: async (args) => {
    const { config: wanted, explicitControl } = runConfig(args);
    // Another controller on this machine holds the default control socket: run without one.
    const defaultTaken = !explicitControl && (await socketIsLive(wanted.control!));
    const config: RunConfig = defaultTaken ? { ...wanted, control: undefined } : wanted;
    let runtime: Runtime;
    try {
      runtime = new Runtime({ config, registry: APP_REGISTRY, bindServices: bindAppServices });
    } catch (e) {
      throw new CliError((e as Error).message);
    }
    const stopped = new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        runtime.log.info({ signal }, 'stopping');
        void runtime.stop().then(resolve);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    if (defaultTaken) runtime.log.warn({ control: wanted.control }, 'the default control socket is in use; running without a control endpoint');
    try {
      await runtime.start();
    } catch (e) {
      await runtime.stop();
      throw new CliError((e as Error).message);
    }
    runtime.log.info({ listen: runtime.listening.map((l) => l.port ?? l.spec), dial: config.dial, control: config.control }, 'running');
    await stopped;
    return EXIT.ok;
  },
};

function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function runConfig(args: string[]): { config: RunConfig; explicitControl: boolean } {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        config: { type: 'string' },
        apps: { type: 'string', multiple: true },
        listen: { type: 'string', multiple: true },
        dial: { type: 'string', multiple: true },
        model: { type: 'string' },
        control: { type: 'string' },
        'log-level': { type: 'string' },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message.split('. ')[0]!);
  }
  let base: RunConfig;
  try {
    base = values.config ? loadRunConfig(values.config) : validateRunConfig({}, '(defaults)');
    const flags = validateRunConfig(
      {
        ...(values.apps && { apps: values.apps.flatMap((a) => a.split(',')).filter(Boolean) }),
        ...(values.listen && { listen: values.listen }),
        ...(values.dial && { dial: values.dial }),
        ...(values.model && { model: values.model }),
        ...(values['log-level'] && { logLevel: values['log-level'] }),
      },
      'command line',
    );
    const listen = values.listen ? flags.listen : base.listen;
    const dial = values.dial ? flags.dial : base.dial;
    const config: RunConfig = {
      ...base,
      ...(values.apps && { apps: flags.apps }),
      listen: listen.length === 0 && dial.length === 0 ? [DEFAULT_LISTEN] : listen,
      dial,
      ...(values.model && { model: flags.model }),
      ...(values['log-level'] && { logLevel: flags.logLevel }),
      control: values.control ? controlPath(values.control) : (base.control ?? DEFAULT_CONTROL_PATH),
    };
    return { config, explicitControl: values.control !== undefined || base.control !== undefined };
  } catch (e) {
    if (e instanceof RunConfigError) throw new CliError(e.message);
    throw e;
  }
}
