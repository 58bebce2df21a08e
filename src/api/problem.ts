import type { ModelIssue } from '../model';

/** An RFC 7807 problem: what the API answers for every request it does not carry out. */
export interface Problem {
  type: 'about:blank';
  title: string;
  status: number;
  detail?: string;
  /** the fields at fault: `ip`, `rules[2].subnet` for the object written, `ports/web2: mac` for another */
  errors?: readonly ModelIssue[];
  /** on 409: the object's revision now (0: it does not exist) */
  revision?: number;
}

export const PROBLEM_TYPE = 'application/problem+json';

/** A request refused with a problem; the error handler sends it. */
export class HttpProblem extends Error {
  override readonly name = 'HttpProblem';
  constructor(
    readonly status: number,
    readonly title: string,
    readonly extra: Omit<Partial<Problem>, 'type' | 'title' | 'status'> = {},
    /** headers to send with it (WWW-Authenticate, Retry-After) */
    readonly headers: Record<string, string> = {},
  ) {
    super(extra.detail ? `${title}: ${extra.detail}` : title);
  }

  get body(): Problem {
    return { type: 'about:blank', title: this.title, status: this.status, ...this.extra };
  }
}
