/** Every job of the app, kept current by the one event stream (`subscribe`). */
import { defineStore } from 'pinia';
import type { AppEvent, JobSnapshot, QueuePolicy } from '../../../api/contract';
import { api, errorMessage, onConnectionChange } from '../api-client';

const LOG_LINES = 400;

/** Called when a job ends (done, failed, cancelled): the app reloads its project. */
let settledListener: ((job: JobSnapshot) => void) | null = null;

export function isLive(job: JobSnapshot | undefined): boolean {
  return !!job && (job.status === 'queued' || job.status === 'running');
}

export const useJobsStore = defineStore('jobs', {
  state: () => ({
    jobs: {} as Record<string, JobSnapshot>,
    lastSeq: -1,
    /** Events applied since the page opened (the Quantize screen shows that it moves). */
    updates: 0,
    connected: false,
    policy: null as QueuePolicy | null,
    error: '',
  }),
  getters: {
    list: (s): JobSnapshot[] => Object.values(s.jobs).sort((a, b) => a.queuedAt.localeCompare(b.queuedAt)),
    active(): JobSnapshot[] {
      return this.list.filter(isLive);
    },
  },
  actions: {
    /** Subscribe once; returns the unsubscribe function. */
    start(onSettled?: (job: JobSnapshot) => void): () => void {
      settledListener = onSettled ?? null;
      const offConn = onConnectionChange((c) => {
        this.connected = c;
        if (!c) this.error = 'Lost the connection to the FxPQ server; reconnecting...';
      });
      let off: () => void = () => {};
      try {
        off = api().subscribe((e) => this.apply(e));
      } catch (e) {
        this.error = `Cannot follow the jobs: ${errorMessage(e)}`;
      }
      return () => {
        off();
        offConn();
      };
    },
    /** Replace state on a snapshot; apply each later event once, in order. */
    apply(event: AppEvent): void {
      if (event.type === 'snapshot') {
        const jobs: Record<string, JobSnapshot> = {};
        for (const j of event.jobs) jobs[j.id] = { ...j, steps: [...(j.steps ?? [])], log: [...(j.log ?? [])] };
        const before = this.jobs;
        this.jobs = jobs;
        this.lastSeq = event.seq;
        this.connected = true;
        this.error = '';
        this.updates++;
        // Jobs that ended while we were away: the project may have changed.
        for (const b of Object.values(before)) if (isLive(b) && !isLive(jobs[b.id])) settledListener?.(jobs[b.id] ?? b);
        return;
      }
      if (event.seq <= this.lastSeq) return;
      this.lastSeq = event.seq;
      this.updates++;
      if (event.type === 'queued') {
        this.jobs[event.job] = {
          ...event.snapshot,
          steps: [...(event.snapshot.steps ?? [])],
          log: [...(event.snapshot.log ?? [])],
        };
        return;
      }
      const job = this.jobs[event.job];
      if (!job) return;
      switch (event.type) {
        case 'started':
          job.status = 'running';
          job.startedAt = event.at;
          job.queuePosition = undefined;
          break;
        case 'progress':
          job.progress = event.progress;
          if (job.status === 'queued') job.status = 'running';
          break;
        case 'step':
          job.steps.push(event.step);
          break;
        case 'log':
          job.log.push(event.line);
          if (job.log.length > LOG_LINES) job.log.splice(0, job.log.length - LOG_LINES);
          break;
        case 'finished':
          job.status = 'done';
          job.result = event.result;
          job.finishedAt = event.at;
          settledListener?.(job);
          break;
        case 'failed':
          job.status = 'failed';
          job.error = event.error;
          job.finishedAt = event.at;
          settledListener?.(job);
          break;
        case 'cancelled':
          job.status = 'cancelled';
          job.finishedAt = event.at;
          settledListener?.(job);
          break;
      }
    },
    /** A job as the server has it now (after start calls that return a snapshot). */
    remember(job: JobSnapshot): void {
      const known = this.jobs[job.id];
      if (!known) this.jobs[job.id] = { ...job, steps: [...(job.steps ?? [])], log: [...(job.log ?? [])] };
    },
    forRun(runId: string | undefined): JobSnapshot | undefined {
      if (!runId) return undefined;
      const all = this.list.filter((j) => j.target?.run === runId && j.kind !== 'export');
      return all.find(isLive) ?? all[all.length - 1];
    },
    forExport(exportId: string | undefined): JobSnapshot | undefined {
      if (!exportId) return undefined;
      return this.list.filter((j) => j.target?.export === exportId).pop();
    },
    async loadPolicy(): Promise<void> {
      try {
        this.policy = await api().queuePolicy();
      } catch {
        this.policy = null;
      }
    },
    async cancel(id: string): Promise<void> {
      this.error = '';
      try {
        await api().cancelJob(id);
      } catch (e) {
        this.error = errorMessage(e);
      }
    },
  },
});
