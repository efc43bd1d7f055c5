/** The project's models: adding (dialog, browser or drop), details, removal. */
import { defineStore } from 'pinia';
import type { ModelDetails } from '../../../api/contract';
import { api, errorMessage } from '../api-client';
import { useAppStore } from './app';
import { busyAction } from './busy-action';

export const useModelsStore = defineStore('models', {
  state: () => ({
    selectedId: '',
    details: null as ModelDetails | null,
    busy: false,
    loading: false,
    error: '',
  }),
  actions: {
    async add(path: string): Promise<boolean> {
      const app = useAppStore();
      if (!app.project) return false;
      if (!path.trim()) {
        this.error = 'Choose an .onnx model file to add.';
        return false;
      }
      if (!/\.onnx$/i.test(path.trim())) {
        this.error = `${path.trim()} is not an .onnx file: FxPQ takes ONNX models.`;
        return false;
      }
      const project = app.project;
      return busyAction(this, 'error', async () => {
        const before = new Set(project.models.map((m) => m.id));
        const p = await api().addModel(project.path, path.trim());
        app.setProject(p);
        const added = p.models.find((m) => !before.has(m.id)) ?? p.models[p.models.length - 1];
        if (added) await this.select(added.id);
      });
    },
    async select(id: string): Promise<void> {
      const app = useAppStore();
      if (!app.project) return;
      this.selectedId = id;
      this.details = null;
      if (!id) return;
      this.loading = true;
      this.error = '';
      try {
        const d = await api().modelDetails(app.project.path, id);
        if (this.selectedId === id) this.details = d;
      } catch (e) {
        this.error = errorMessage(e);
      } finally {
        this.loading = false;
      }
    },
    async remove(id: string): Promise<void> {
      const app = useAppStore();
      if (!app.project) return;
      this.error = '';
      try {
        app.setProject(await api().removeModel(app.project.path, id));
        if (this.selectedId === id) {
          this.selectedId = '';
          this.details = null;
        }
      } catch (e) {
        this.error = errorMessage(e);
      }
    },
    reset(): void {
      this.selectedId = '';
      this.details = null;
      this.error = '';
    },
  },
});
