/** Quantization runs: the form, start / resume / cancel, and the results of finished runs. */
import { defineStore } from 'pinia';
import type { EqualizeMode, HistogramData, ResumeFrom, RunRequest, RunResults } from '../../../api/contract';
import { api, errorMessage } from '../api-client';
import { useAppStore } from './app';
import { useJobsStore } from './jobs';
import { busyAction } from './busy-action';

export interface RunForm {
  model: string;
  dataset: string;
  name: string;
  mode: 'search' | 'uniform';
  budget: number;
  uniform: number;
  /** Uniform: the weights' bits (null: the same as every other structure). */
  weightBits: number | null;
  /** 'auto': the service's default (a search: optimized on 1000+ calibration images, else nearest; a uniform run: optimized on 50+). */
  rounding: 'auto' | 'nearest' | 'optimized';
  strategy: 'schedule' | 'sensitivity' | 'tradeoff';
  calib: number | null;
  eval: number | null;
  slice: number | null;
  /** z of the search's paired bound (null: the default, 1). */
  z: number | null;
  /** z of the final check on the calibration split (null: the default, 2). */
  finalZ: number | null;
  seed: number;
  distill: boolean;
  biasCorrection: boolean;
  fracChoice: boolean;
  equalize: EqualizeMode;
}

export const defaultRunForm = (): RunForm => ({
  model: '',
  dataset: '',
  name: '',
  mode: 'search',
  budget: 1,
  uniform: 8,
  weightBits: null,
  rounding: 'auto',
  strategy: 'schedule',
  calib: null,
  eval: null,
  slice: null,
  z: null,
  finalZ: null,
  seed: 0,
  distill: true,
  biasCorrection: true,
  fracChoice: true,
  equalize: 'depthwise',
});

/** The request the form describes, or a sentence saying what is missing. */
export function runRequest(f: RunForm): RunRequest | string {
  if (!f.model) return 'Choose the model to quantize (add one on the Model screen).';
  if (!f.dataset) return 'Choose the dataset to calibrate on (import one on the Datasets screen).';
  const req: RunRequest = { model: f.model, dataset: f.dataset, seed: f.seed };
  if (f.equalize !== 'depthwise') req.equalize = f.equalize;
  if (f.name.trim()) req.name = f.name.trim();
  if (f.mode === 'uniform') {
    if (!Number.isInteger(f.uniform) || f.uniform < 2 || f.uniform > 16)
      return 'Uniform bits must be a whole number from 2 to 16.';
    req.uniform = f.uniform;
    if (f.weightBits != null) {
      if (!Number.isInteger(f.weightBits) || f.weightBits < 2 || f.weightBits > 16)
        return 'Weight bits must be a whole number from 2 to 16.';
      req.weightBits = f.weightBits;
    }
  } else {
    if (!(f.budget > 0)) return 'The accuracy budget must be more than 0 top-1 points.';
    req.budget = f.budget;
    req.strategy = f.strategy;
    req.distill = f.distill;
    req.biasCorrection = f.biasCorrection;
    if (!f.fracChoice) req.fracChoice = false;
  }
  if (f.rounding !== 'auto') req.rounding = f.rounding;
  if (!Number.isInteger(f.seed) || f.seed < 0) return 'The seed must be a whole number, 0 or more.';
  if (f.calib != null) {
    if (!Number.isInteger(f.calib) || f.calib < 1) return 'Calibration images must be a whole number above 0.';
    req.calib = f.calib;
  }
  if (f.mode === 'search' && f.slice != null) {
    if (!Number.isInteger(f.slice) || f.slice < 1) return 'The early-rejection slice must be a whole number above 0.';
    req.slice = f.slice;
  }
  if (f.mode === 'search' && f.z != null) {
    if (!(Number.isFinite(f.z) && f.z >= 0 && f.z <= 10)) return 'The confidence z must be a number from 0 to 10.';
    req.z = f.z;
  }
  if (f.mode === 'search' && f.finalZ != null) {
    if (!(Number.isFinite(f.finalZ) && f.finalZ >= 0 && f.finalZ <= 10))
      return 'The final check z must be a number from 0 to 10.';
    req.finalZ = f.finalZ;
  }
  if (f.eval != null) {
    if (!Number.isInteger(f.eval) || f.eval < 1) return 'Evaluation images must be a whole number above 0.';
    req.eval = f.eval;
  }
  return req;
}

export const useRunsStore = defineStore('runs', {
  state: () => ({
    form: defaultRunForm(),
    /** The run the Quantize screen follows. */
    liveRun: '',
    /** The Results screen: a run and an optional second one beside it. */
    selected: '',
    compare: '',
    results: {} as Record<string, RunResults>,
    histogram: null as HistogramData | null,
    histogramTensor: '',
    histogramLoading: false,
    busy: false,
    error: '',
    resultsError: '',
    histogramError: '',
  }),
  actions: {
    async start(): Promise<boolean> {
      const app = useAppStore();
      const jobs = useJobsStore();
      if (!app.project) return false;
      const req = runRequest(this.form);
      if (typeof req === 'string') {
        this.error = req;
        return false;
      }
      const project = app.project;
      return busyAction(this, 'error', async () => {
        const job = await api().startRun(project.path, req);
        jobs.remember(job);
        if (job.target?.run) this.liveRun = job.target.run;
        await app.reloadProject();
        if (!job.target?.run) this.liveRun = app.project?.runs.find((r) => r.job === job.id)?.id ?? '';
      });
    },
    async resume(runId: string, from: ResumeFrom = 'latest'): Promise<boolean> {
      const app = useAppStore();
      const jobs = useJobsStore();
      if (!app.project) return false;
      const project = app.project;
      return busyAction(this, 'error', async () => {
        const job = await api().resumeRun(project.path, runId, from);
        jobs.remember(job);
        this.liveRun = runId;
        await app.reloadProject();
      });
    },
    async cancel(runId: string): Promise<void> {
      const app = useAppStore();
      const jobs = useJobsStore();
      const job = jobs.forRun(runId);
      const id =
        job && (job.status === 'queued' || job.status === 'running')
          ? job.id
          : app.project?.runs.find((r) => r.id === runId)?.job;
      if (!id) {
        this.error = 'This run has no job to cancel.';
        return;
      }
      this.error = '';
      try {
        await api().cancelJob(id);
      } catch (e) {
        this.error = errorMessage(e);
      }
    },
    async load(runId: string, force = false): Promise<RunResults | null> {
      const app = useAppStore();
      if (!app.project || !runId) return null;
      if (this.results[runId] && !force) return this.results[runId]!;
      try {
        const r = await api().runResults(app.project.path, runId);
        this.results[runId] = r;
        return r;
      } catch (e) {
        this.resultsError = errorMessage(e);
        return null;
      }
    },
    async select(runId: string): Promise<void> {
      this.selected = runId;
      this.resultsError = '';
      this.histogram = null;
      this.histogramTensor = '';
      if (runId) await this.load(runId, true);
    },
    async selectCompare(runId: string): Promise<void> {
      this.compare = runId;
      if (runId) await this.load(runId, true);
    },
    async loadHistogram(tensor: string): Promise<void> {
      const app = useAppStore();
      if (!app.project || !this.selected) return;
      this.histogramTensor = tensor;
      this.histogramError = '';
      this.histogram = null;
      if (!tensor) return;
      this.histogramLoading = true;
      try {
        const h = await api().structureHistogram(app.project.path, this.selected, tensor);
        if (this.histogramTensor === tensor) this.histogram = h;
      } catch (e) {
        if (this.histogramTensor === tensor) this.histogramError = errorMessage(e);
      } finally {
        if (this.histogramTensor === tensor) this.histogramLoading = false;
      }
    },
    async remove(runId: string): Promise<void> {
      const app = useAppStore();
      if (!app.project) return;
      this.error = '';
      try {
        app.setProject(await api().removeRun(app.project.path, runId));
        delete this.results[runId];
        if (this.selected === runId) this.selected = '';
        if (this.compare === runId) this.compare = '';
        if (this.liveRun === runId) this.liveRun = '';
      } catch (e) {
        this.error = errorMessage(e);
      }
    },
    reset(): void {
      this.liveRun = '';
      this.selected = '';
      this.compare = '';
      this.results = {};
      this.histogram = null;
      this.error = '';
      this.resultsError = '';
    },
  },
});
