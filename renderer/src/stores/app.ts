/** The app and its projects: host info, the screen shown, the open project and the recent list. */
import { defineStore } from 'pinia';
import type { AppInfo, Project, RecentProject } from '../../../api/contract';
import { api, errorMessage } from '../api-client';
import { busyAction } from './busy-action';

export type Screen = 'projects' | 'model' | 'datasets' | 'quantize' | 'results' | 'export';

export const SCREENS: { id: Screen; label: string; needsProject: boolean }[] = [
  { id: 'projects', label: 'Projects', needsProject: false },
  { id: 'model', label: 'Model', needsProject: true },
  { id: 'datasets', label: 'Datasets', needsProject: true },
  { id: 'quantize', label: 'Quantize', needsProject: true },
  { id: 'results', label: 'Results', needsProject: true },
  { id: 'export', label: 'Export', needsProject: true },
];

const LAST_PROJECT = 'fxpq.lastProject';

export const useAppStore = defineStore('app', {
  state: () => ({
    info: null as AppInfo | null,
    screen: 'projects' as Screen,
    project: null as Project | null,
    recent: [] as RecentProject[],
    busy: false,
    error: '',
  }),
  getters: {
    isWeb: (s) => s.info?.host !== 'electron',
    projectPath: (s) => s.project?.path ?? '',
  },
  actions: {
    async load(): Promise<void> {
      try {
        this.info = await api().appInfo();
      } catch (e) {
        this.error = errorMessage(e);
        return;
      }
      await this.refreshRecent();
      let last: string | null = null;
      try {
        last = sessionStorage.getItem(LAST_PROJECT);
      } catch {
        last = null;
      }
      if (last && !this.project) await this.openProject(last, true);
    },
    async refreshRecent(): Promise<void> {
      try {
        this.recent = await api().recentProjects();
      } catch (e) {
        this.error = errorMessage(e);
      }
    },
    setProject(p: Project | null): void {
      this.project = p;
      try {
        if (p) sessionStorage.setItem(LAST_PROJECT, p.path);
        else sessionStorage.removeItem(LAST_PROJECT);
      } catch {
        // no storage: nothing to remember
      }
      if (typeof document !== 'undefined') document.title = p ? `${p.name} - FxPQ` : 'FxPQ';
    },
    async run(fn: () => Promise<Project | void>, quiet = false): Promise<boolean> {
      return busyAction(
        this,
        'error',
        async () => {
          const p = await fn();
          if (p) this.setProject(p);
        },
        quiet,
      );
    },
    async createProject(dir: string, name: string): Promise<boolean> {
      if (!dir.trim()) {
        this.error = 'Choose a folder for the new project.';
        return false;
      }
      const ok = await this.run(() => api().createProject(dir.trim(), name.trim() || baseName(dir)));
      if (ok) {
        await this.refreshRecent();
        this.screen = 'model';
      }
      return ok;
    },
    async openProject(dir: string, quiet = false): Promise<boolean> {
      const ok = await this.run(() => api().openProject(dir), quiet);
      if (ok) await this.refreshRecent();
      return ok;
    },
    async reloadProject(): Promise<void> {
      if (!this.project) return;
      const path = this.project.path;
      try {
        const p = await api().openProject(path);
        if (this.project?.path === path) this.project = p;
      } catch (e) {
        this.error = errorMessage(e);
      }
    },
    async renameProject(name: string): Promise<boolean> {
      const p = this.project;
      if (!p) return false;
      if (!name.trim()) {
        this.error = 'A project needs a name.';
        return false;
      }
      const ok = await this.run(() => api().renameProject(p.path, name.trim()));
      if (ok) await this.refreshRecent();
      return ok;
    },
    async removeProject(path: string, deleteFiles: boolean): Promise<boolean> {
      const ok = await this.run(async () => {
        await api().removeProject(path, deleteFiles);
      });
      if (ok) {
        if (this.project?.path === path) this.setProject(null);
        await this.refreshRecent();
      }
      return ok;
    },
    closeProject(): void {
      this.setProject(null);
      this.screen = 'projects';
    },
  },
});

export function baseName(path: string): string {
  const parts = path.split(/[\\/]/).filter(Boolean);
  return parts[parts.length - 1] ?? path;
}
