/** The project's datasets: layout detection, import jobs, details, thumbnails and previews. */
import { defineStore } from 'pinia';
import type { DatasetDetails, DatasetLayout, ImagePreview, LayoutGuess } from '../../../api/contract';
import { api, errorMessage } from '../api-client';
import { useAppStore } from './app';
import { useJobsStore } from './jobs';
import { busyAction } from './busy-action';

export interface ImportForm {
  source: string;
  name: string;
  layout: DatasetLayout | 'auto';
  labels: string;
  classes: string;
  synsets: string;
  copy: boolean;
}

export const emptyImportForm = (): ImportForm => ({
  source: '',
  name: '',
  layout: 'auto',
  labels: '',
  classes: '',
  synsets: '',
  copy: false,
});

export const useDatasetsStore = defineStore('datasets', {
  state: () => ({
    form: emptyImportForm(),
    guess: null as LayoutGuess | null,
    importJob: '',
    selectedId: '',
    details: null as DatasetDetails | null,
    filterClass: '',
    filterSplit: '' as '' | 'calib' | 'eval' | 'none',
    thumbs: {} as Record<string, string>,
    preview: null as (ImagePreview & { path: string; original?: ImagePreview }) | null,
    previewModel: '',
    busy: false,
    error: '',
    importError: '',
  }),
  getters: {
    filteredImages(s) {
      const images = s.details?.images ?? [];
      return images.filter(
        (i) => (!s.filterClass || i.classId === s.filterClass) && (!s.filterSplit || i.split === s.filterSplit),
      );
    },
  },
  actions: {
    async detect(source: string): Promise<void> {
      this.form.source = source;
      this.guess = null;
      this.importError = '';
      if (!source.trim()) return;
      try {
        const g = await api().detectDatasetLayout(source.trim());
        if (this.form.source !== source) return;
        this.guess = g;
        this.form.layout = g.layout;
        if (g.labels && !this.form.labels) this.form.labels = g.labels;
      } catch (e) {
        this.importError = errorMessage(e);
      }
    },
    async startImport(): Promise<boolean> {
      const app = useAppStore();
      const jobs = useJobsStore();
      if (!app.project) return false;
      const f = this.form;
      if (!f.source.trim()) {
        this.importError = 'Choose the folder that holds the images.';
        return false;
      }
      const project = app.project;
      return busyAction(this, 'importError', async () => {
        const job = await api().importDataset(project.path, {
          source: f.source.trim(),
          name: f.name.trim() || undefined,
          layout: f.layout,
          labels: f.labels.trim() || undefined,
          classes: f.classes.trim() || undefined,
          synsets: f.synsets.trim() || undefined,
          copy: f.copy,
        });
        jobs.remember(job);
        this.importJob = job.id;
      });
    },
    async select(id: string): Promise<void> {
      const app = useAppStore();
      if (!app.project) return;
      this.selectedId = id;
      this.details = null;
      this.preview = null;
      this.thumbs = {};
      this.filterClass = '';
      this.filterSplit = '';
      if (!id) return;
      this.error = '';
      try {
        const d = await api().datasetDetails(app.project.path, id);
        if (this.selectedId === id) this.details = d;
      } catch (e) {
        this.error = errorMessage(e);
      }
    },
    async thumbnail(path: string): Promise<void> {
      const app = useAppStore();
      if (!app.project || !this.selectedId || this.thumbs[path]) return;
      const id = this.selectedId;
      try {
        const img = await api().datasetImage(app.project.path, id, path, 96);
        if (this.selectedId === id) this.thumbs[path] = img.dataUrl;
      } catch {
        if (this.selectedId === id) this.thumbs[path] = '';
      }
    },
    async showPreview(path: string): Promise<void> {
      const app = useAppStore();
      if (!app.project || !this.selectedId) return;
      const id = this.selectedId;
      this.error = '';
      try {
        const original = await api().datasetImage(app.project.path, id, path, 224);
        const seen = this.previewModel
          ? await api().datasetImage(app.project.path, id, path, 224, this.previewModel)
          : original;
        if (this.selectedId === id) this.preview = { ...seen, path, original };
      } catch (e) {
        this.error = errorMessage(e);
      }
    },
    async remove(id: string): Promise<void> {
      const app = useAppStore();
      if (!app.project) return;
      this.error = '';
      try {
        app.setProject(await api().removeDataset(app.project.path, id));
        if (this.selectedId === id) await this.select('');
      } catch (e) {
        this.error = errorMessage(e);
      }
    },
    reset(): void {
      this.selectedId = '';
      this.details = null;
      this.preview = null;
      this.thumbs = {};
      this.importJob = '';
      this.error = '';
      this.importError = '';
      this.guess = null;
    },
  },
});
