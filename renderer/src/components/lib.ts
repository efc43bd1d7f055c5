/**
 * What the components use from the rest of the renderer, in one place: .vue files import
 * only `vue`, `pinia` and files beside them (test/app/layers.test.ts checks that).
 */
export type * from '../../../api/contract';
export * from '../format';
export { api, errorMessage } from '../api-client';
export { useAppStore, baseName } from '../stores/app';
export { useJobsStore, isLive } from '../stores/jobs';
export { useRunsStore } from '../stores/runs';
export { useDatasetsStore } from '../stores/datasets';
