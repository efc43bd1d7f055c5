/**
 * What the screens use from the rest of the renderer, in one place: .vue files import only
 * `vue`, `pinia` and files beside them (test/app/layers.test.ts checks that).
 */
export type * from '../../../api/contract';
export * from '../format';
export { api, droppedFilePath, errorMessage } from '../api-client';
export { useAppStore, baseName, SCREENS, type Screen } from '../stores/app';
export { useJobsStore, isLive } from '../stores/jobs';
export { useModelsStore } from '../stores/models';
export { useDatasetsStore, emptyImportForm } from '../stores/datasets';
export { useRunsStore, defaultRunForm, runRequest } from '../stores/runs';
export { useExportsStore, FORMATS, fileUrl } from '../stores/exports';
export { default as ErrorPanel } from '../components/ErrorPanel.vue';
export { default as ProgressBar } from '../components/ProgressBar.vue';
export { default as JobStatus } from '../components/JobStatus.vue';
export { default as LogPane } from '../components/LogPane.vue';
export { default as EChart } from '../components/EChart.vue';
export { default as PathField } from '../components/PathField.vue';
export { default as BitHeatmap } from '../components/BitHeatmap.vue';
export { default as TrajectoryChart } from '../components/TrajectoryChart.vue';
export { default as HistogramChart } from '../components/HistogramChart.vue';
export { default as ConfusionChart } from '../components/ConfusionChart.vue';
export { default as ClassHistogram } from '../components/ClassHistogram.vue';
export { default as RunSummaryCard } from '../components/RunSummaryCard.vue';
export { default as EvaluateRunCard } from '../components/EvaluateRunCard.vue';
