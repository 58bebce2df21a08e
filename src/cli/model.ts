import { stringify as stringifyYaml } from 'yaml';
import { ModelValidationError, loadModelFile, parseEtcdUrl } from '../model';
import { CliError, EXIT, UsageError, defineCommand } from './command';

/** `zonemesh model import|export`: moves a model between a file and etcd. */
export const modelCommand = defineCommand({
  name: 'model',
  operands: 'import FILE|export',
  summary: 'imports a model file into etcd, or exports the model in etcd (docs/etcd-store.md)',
  description: 'Moves a network model between a file and etcd (docs/etcd-store.md).',
  subcommands: [
    { usage: 'import FILE', summary: 'validates FILE (YAML or JSON) and replaces the model in etcd with it in one switch-over; an invalid file writes nothing' },
    { usage: 'export', summary: 'prints the model in etcd as YAML, in the shape of models/*.yaml' },
  ],
  options: [{ name: 'store', value: 'etcd://HOST:PORT[,...]', required: true, description: 'the etcd cluster that holds the model' }] as const,
  positionals: true,
  exits: { problems: 'the model is invalid (each problem on stderr); nothing was written', failed: 'etcd could not be reached or failed' },
  run: async ({ values, positionals: [action, ...positionals] }) => {
    if (action !== 'import' && action !== 'export') throw new UsageError(`'model ${action ?? ''}': say import or export`);
    if (values.store === undefined) throw new UsageError('--store etcd://HOST:PORT is required');
    const endpoints = parseEtcdUrl(values.store);
    if (typeof endpoints === 'string') throw new UsageError(`--store: ${endpoints}`);
    if (action === 'import' && positionals.length !== 1) throw new UsageError('model import takes one FILE');
    if (action === 'export' && positionals.length !== 0) throw new UsageError('model export takes no FILE (it prints to stdout)');

    let model;
    if (action === 'import') {
      try {
        model = loadModelFile(positionals[0]!);
      } catch (e) {
        if (!(e instanceof ModelValidationError)) throw e;
        console.error(e.message);
        return EXIT.problems;
      }
    }
    // loaded only here: the etcd client takes half a second to load
    const [{ connectEtcd, readPrefix, reasonOf }, { importModel, exportModel }, { ETCD_ROOT }] = await Promise.all([
      import('../model/etcd-client'),
      import('../model/etcd-transfer'),
      import('../model/etcd-layout'),
    ]);
    const client = connectEtcd(endpoints);
    try {
      // one quick read first, so an unreachable etcd is one clear line rather than a gRPC status
      await readPrefix(client, `${ETCD_ROOT}current`, { keysOnly: true, deadlineMs: 5000 }).catch((e: unknown) => {
        throw new CliError(`cannot reach etcd at ${endpoints.join(',')}: ${reasonOf(e)}`);
      });
      if (model) {
        const result = await importModel(client, model);
        console.log(`imported ${positionals[0]}: ${result.keys} keys as generation ${result.generation}, in force from revision ${result.revision}`);
        return EXIT.ok;
      }
      try {
        const { document, revision } = await exportModel(client);
        process.stdout.write(`# zonemesh model exported from etcd at revision ${revision}\n${stringifyYaml(document)}`);
        return EXIT.ok;
      } catch (e) {
        if (!(e instanceof ModelValidationError)) throw e;
        console.error(e.message);
        return EXIT.problems;
      }
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError(`etcd at ${endpoints.join(',')}: ${reasonOf(e)}`);
    } finally {
      client.close();
    }
  },
});
