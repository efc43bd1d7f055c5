// Preloaded into a child process (NODE_OPTIONS=--import): at exit, write the process's peak
// resident memory (kilobytes, all threads) to FXPQ_PEAK_RSS_FILE, for memory bounds in tests.
import { writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

const file = process.env.FXPQ_PEAK_RSS_FILE;
if (file && isMainThread) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
