/** One problem of a document (a model, a run config, an app's settings): where and what. */
export interface DocumentIssue {
  /** where in the document, e.g. `vpcs[0].subnets[2].cidr` or `listen[1]` */
  path: string;
  problem: string;
}

export type ModelIssue = DocumentIssue;

/** `source: path: problem` for one issue; a count and one indented line per issue for several. */
export function describeIssues(source: string, issues: readonly DocumentIssue[]): string {
  return issues.length === 1 ? `${source}: ${issues[0]!.path}: ${issues[0]!.problem}` : `${source}: ${issues.length} problems\n${issues.map((i) => `  ${i.path}: ${i.problem}`).join('\n')}`;
}

/** A document that cannot be used, with every problem found. */
export abstract class DocumentError extends Error {
  constructor(
    readonly source: string,
    readonly issues: readonly DocumentIssue[],
    message = describeIssues(source, issues),
  ) {
    super(message);
  }
}

/** A model document that cannot be accepted; the running model stays as it was. */
export class ModelValidationError extends DocumentError {
  override readonly name = 'ModelValidationError';
  constructor(source: string, issues: readonly ModelIssue[]) {
    // every line names the file: a model's problems are read far from where they were written
    super(source, issues, `${source}: ${issues.length} problem(s)\n${issues.map((i) => `  ${source}: ${i.path}: ${i.problem}`).join('\n')}`);
  }
}
