/**
 * onnxruntime session options shared by every runner. Intra-op threads do not spin while they
 * wait for work: spinning threads keep a core busy between runs, and on a workstation's few
 * cores that is the core the app's window (or `fxpq serve`) needs to stay responsive
 * (BENCHMARKS.md, front-end event loop).
 */
import type { InferenceSession } from 'onnxruntime-node';

export function sessionOptions(
  o: { threads?: number; optimization?: 'all' | 'extended' | 'basic' | 'disabled' } = {},
): InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: o.optimization ?? 'all',
    ...(o.threads ? { intraOpNumThreads: o.threads } : {}),
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}
