/**
 * The CLI runs its long commands as jobs of the same JobManager the app uses (on the pool),
 * relays their progress to stderr, and turns Ctrl+C into a cancel: a search then stops at its
 * next evaluation with its checkpoint kept, so the same command resumes it.
 */
import type { JobProgress } from '../api/contract.js';
import { JobManager, type JobOptions, type JobResult, type JobTaskKind } from '../services/jobs.js';

export async function runJob<K extends JobTaskKind>(
  kind: K,
  options: JobOptions<K>,
  onProgress?: (p: JobProgress) => void,
  jobs: JobManager = new JobManager(),
): Promise<JobResult<K>> {
  const job = jobs.start(kind, options);
  const unsubscribe = jobs.subscribe((e) => {
    if (e.type === 'progress' && e.job === job.id) onProgress?.(e.progress);
  });
  const cancel = (): void => job.cancel();
  process.once('SIGINT', cancel);
  try {
    return await job.result;
  } finally {
    unsubscribe();
    process.off('SIGINT', cancel);
  }
}
