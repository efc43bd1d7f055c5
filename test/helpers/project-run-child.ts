/**
 * A child process for the crash test: opens a project, starts a search through the project
 * service (on the pool, as the app does) and waits; the test SIGKILLs it mid-search.
 * argv: PROJECT_DIR MODEL_ID DATASET_ID CACHE_DIR
 */
import { JobManager } from '../../services/jobs.js';
import { ProjectService } from '../../services/projects.js';

const [dir, model, dataset, configDir] = process.argv.slice(2) as [string, string, string, string];
const projects = new ProjectService(new JobManager(), configDir);
await projects.open(dir);
const job = await projects.startRun(dir, { model, dataset, name: 'crash', budget: 2, calib: 60, slice: 20, seed: 3 });
process.stdout.write(`started ${job.id}\n`);
await new Promise(() => undefined);
