/** Exports of a run: the formats, the export job, the files and their verification. */
import { defineStore } from 'pinia';
import type { ExportFormat } from '../../../api/contract';
import { api, errorMessage } from '../api-client';
import { useAppStore } from './app';
import { useJobsStore } from './jobs';
import { busyAction } from './busy-action';

export const FORMATS: { id: ExportFormat; label: string; help: string }[] = [
  { id: 'qdq', label: 'QDQ ONNX', help: 'model.qdq.onnx, checked against the simulation in onnxruntime' },
  { id: 'fxpq', label: 'FxPQ package', help: 'model.fxpq: packed integer weights, manifest and golden vectors' },
  { id: 'c', label: 'C source', help: 'integer-only C99 with a golden-vector harness, checked with gcc' },
];

/** Where the web host serves an exported file (it has no way to open it on the user's screen), or null. */
export function fileUrl(path: string): string | null {
  const base = useAppStore().info?.filesUrl;
  return base ? `${base}?path=${encodeURIComponent(path)}` : null;
}

export const useExportsStore = defineStore('exports', {
  state: () => ({
    run: '',
    formats: ['qdq', 'fxpq', 'c'] as ExportFormat[],
    cWeights: 'packed' as 'packed' | 'bytes',
    selected: '',
    busy: false,
    error: '',
    /** Where a file is, when the OS cannot open it for us (web mode), and where the web host serves it. */
    shownPath: '',
    shownUrl: '',
  }),
  actions: {
    async start(): Promise<boolean> {
      const app = useAppStore();
      const jobs = useJobsStore();
      if (!app.project) return false;
      if (!this.run) {
        this.error = 'Choose a finished run to export.';
        return false;
      }
      if (this.formats.length === 0) {
        this.error = 'Choose at least one format to export.';
        return false;
      }
      const project = app.project;
      return busyAction(this, 'error', async () => {
        const job = await api().startExport(project.path, this.run, [...this.formats], this.cWeights);
        jobs.remember(job);
        await app.reloadProject();
        this.selected = job.target?.export ?? app.project?.exports.find((x) => x.job === job.id)?.id ?? this.selected;
      });
    },
    /** Open a file or folder with the OS; where that is not possible (web mode), show its path and, for a file, a link. */
    async open(path: string, kind: 'file' | 'folder'): Promise<void> {
      this.shownPath = '';
      this.shownUrl = '';
      this.error = '';
      try {
        const opened = await api().openPath(path);
        if (opened) return;
        this.shownPath = path;
        const url = fileUrl(path);
        if (kind === 'file' && url) this.shownUrl = url;
      } catch (e) {
        this.error = errorMessage(e);
      }
    },
    reset(): void {
      this.run = '';
      this.selected = '';
      this.error = '';
      this.shownPath = '';
      this.shownUrl = '';
    },
  },
});
