import { DocumentError, type DocumentIssue } from '../model/errors';
/** A flow that breaks its table's schema or OpenFlow's rules, caught when the flow is built. */
export class FlowBuildError extends Error {
  override readonly name = 'FlowBuildError';
  constructor(
    message: string,
    readonly context: { table?: string; field?: string; app?: string } = {},
  ) {
    super(context.table ? `table ${context.table}: ${message}` : message);
  }
}

/** Apps whose tables cannot be laid out together (duplicate names, unknown next tables, too many tables). */
export class PipelineError extends Error {
  override readonly name = 'PipelineError';
}

/** An app read `ctx.model` but the run config names no model (`model:` or `store:`). */
export class ModelNotConfiguredError extends Error {
  override readonly name = 'ModelNotConfiguredError';
  constructor(readonly app: string) {
    super(`app ${app} reads the network model, but the run config names none (model: FILE or store: etcd://…)`);
  }
}

export type SettingsIssue = DocumentIssue;

/** An app's settings (`settings.<app>` in the run config) that it cannot use, with every problem found. */
export class AppSettingsError extends DocumentError {
  override readonly name = 'AppSettingsError';
  constructor(
    readonly app: string,
    issues: readonly SettingsIssue[],
  ) {
    super(`settings.${app}`, issues);
  }
}
