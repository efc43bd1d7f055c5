/**
 * onnxruntime session options shared by every runner. Intra-op threads do not spin while they
 * wait for work: spinning threads keep a core busy between runs, and on a workstation's few
 * cores that is the core the app's window (or `fxpq serve`) needs to stay responsive
 * (BENCHMARKS.md, front-end event loop). onnxruntime's own warnings (coloured lines about shape
 * merging or unused initializers) are not the user's business: errors reach the user as
 * sentences through ort-session.ts, so only errors are logged.
 */
import type { InferenceSession } from 'onnxruntime-node';

export function sessionOptions(
  o: { threads?: number; optimization?: 'all' | 'extended' | 'basic' | 'disabled' } = {},
): InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: o.optimization ?? 'all',
    logSeverityLevel: 3,
    ...(o.threads ? { intraOpNumThreads: o.threads } : {}),
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}
