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
