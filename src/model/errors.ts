export interface ModelIssue {
  /** where in the document, e.g. `vpcs[0].subnets[2].cidr` */
  path: string;
  problem: string;
}

/** A model document that cannot be accepted; the running model stays as it was. */
export class ModelValidationError extends Error {
  override readonly name = 'ModelValidationError';
  constructor(
    readonly source: string,
    readonly issues: readonly ModelIssue[],
  ) {
    super(`${source}: ${issues.length} problem(s)\n${issues.map((i) => `  ${source}: ${i.path}: ${i.problem}`).join('\n')}`);
  }
}
