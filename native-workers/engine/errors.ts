/**
 * An error whose message is meant for the user: one or two plain sentences that name the
 * file (or object) and the problem. Front ends print `message` as is, never a stack trace.
 */
export class FxpqError extends Error {
  constructor(
    message: string,
    /** A stable machine-readable code, for the UI and for tests. */
    readonly code: FxpqErrorCode,
  ) {
    super(message);
    this.name = 'FxpqError';
  }
}

export type FxpqErrorCode =
  | 'not-found'
  | 'not-onnx'
  | 'unsupported-op'
  | 'unsupported-model'
  | 'invalid-model'
  | 'io'
  | 'cancelled'
  | 'worker-crashed'
  | 'bad-request';

export function isFxpqError(e: unknown): e is FxpqError {
  return e instanceof FxpqError;
}
