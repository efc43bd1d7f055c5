import { defineStore } from 'pinia';
import type { AppInfo, InspectReport } from '../../../api/contract';
import { connectApi } from '../api-client';

const api = connectApi();

export const useModelStore = defineStore('model', {
  state: () => ({
    info: null as AppInfo | null,
    path: '',
    report: null as InspectReport | null,
    error: '',
    busy: false,
  }),
  actions: {
    async load(): Promise<void> {
      try {
        this.info = await api.appInfo();
      } catch (e) {
        this.error = (e as Error).message;
      }
    },
    async inspect(): Promise<void> {
      this.busy = true;
      this.error = '';
      this.report = null;
      try {
        this.report = await api.inspectModel(this.path);
      } catch (e) {
        this.error = (e as Error).message;
      } finally {
        this.busy = false;
      }
    },
  },
});
