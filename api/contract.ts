/**
 * The typed API contract between the front ends and the renderer: the data shapes the
 * services return, the operations the renderer may call, and the one event stream of jobs.
 * Types only, no imports: the Electron preload (IPC) and the web host (HTTP + Server-Sent
 * Events) both implement `FxpqBridge`; the CLI drives the same services directly.
 */

export type PublicShape = (number | string)[];

export interface InspectLayer {
  name: string;
  op: string;
  /** A Relu/Clip folded into this layer, e.g. "Relu" or "Clip(0,6)". */
  activation?: string;
  inputShape: number[];
  outputShape: number[];
  params: number;
  macs: number;
}

/** `fxpq inspect --json` (contracts.md). */
export interface InspectReport {
  model: {
    path: string;
    producer: string;
    opset: number;
    irVersion: number;
    inputs: { name: string; shape: PublicShape; layout: 'nchw' | 'nhwc' }[];
    outputs: { name: string; shape: PublicShape }[];
    /** The batch size the model fixes, or null when the batch dimension is dynamic. */
    fixedBatch: number | null;
  };
  /** Operator counts of the model as the file holds it. */
  ops: Record<string, number>;
  /** Layers of the canonical graph (BN folded, activations fused), for one image. */
  layers: InspectLayer[];
  totals: { params: number; macs: number; fp32Bytes: number };
}

export interface AppInfo {
  name: string;
  version: string;
  /** Which front end serves the renderer. */
  host: 'electron' | 'web';
  /** Folders the web host's folder browser may show (the user's home and the workspace). */
  browseRoots: string[];
  /** Web mode: where the host serves a project's exported files, as `${filesUrl}?path=<absolute path>`. */
  filesUrl?: string;
}

/** A failure the UI shows in its error panel: the message names the file and the problem. */
export interface ApiError {
  code: string;
  message: string;
}

// ---------------------------------------------------------------------------------------
// Runs (report.json of contracts.md) and the search trajectory

export interface MemoryReport {
  fp32Bits: number;
  quantBits: number;
  reduction: number;
  /** Over weights and biases (the parameters). */
  weightsReduction: number;
  avgBitsWeights: number;
  avgBitsActivations: number;
}

export interface StructureFormat {
  layer: string;
  /** W, B or A. */
  kind: string;
  tensor: string;
  elements: number;
  signed: boolean;
  bits: number;
  frac: number;
}

export interface RunReport {
  model: { path: string; sha256: string };
  budget: number | null;
  data: { calib: number; eval: number; labelled: boolean; seed: number };
  fp: { top1: number; top5: number };
  /**
   * `ties`: held-out images whose top logit is shared by several classes (decided by class order).
   * `n10` / `n01`: held-out images the float model gets right and the fixed-point network wrong,
   * and the reverse; the drop is (n10 - n01) / n and `dropStandardError` (a fraction, like top1)
   * is its paired standard error sqrt(n10 + n01) / n: a drop within about two of it of the budget
   * is within the held-out split's own noise.
   */
  quant: {
    top1: number;
    top5: number;
    agreement: number;
    ties?: number;
    n10?: number;
    n01?: number;
    dropStandardError?: number;
  };
  memory: MemoryReport;
  structures: StructureFormat[];
  search: {
    evaluations: number;
    seconds: number;
    fp32Passes?: number;
    simPasses?: number;
    /** Seconds of one FP32 pass over D_c (the unit of fp32Passes). */
    fp32PassSeconds?: number;
    /** Seconds the simulation spent evaluating, per search phase (rounding is in `rounding.seconds`). */
    simulationSeconds?: Record<string, number>;
    strategy?: string;
    /**
     * The final check of the result on all calibration images (D_c): drop and bound in points, the
     * bound's z (absent in reports made before the check had its own z: the search's z), whether
     * it rolled back, and whether the result meets the budget at that z (absent: it does).
     */
    finalCheck?: { drop: number; bound: number; budget: number; rolledBack: boolean; z?: number; within?: boolean };
    /**
     * The state's activations kept so that candidates run only the layers after their change, in
     * this process: simulation runs on calibration batches, those that started from kept
     * activations, the share of the simulation graph's nodes those runs computed, and the most
     * bytes kept at once.
     */
    keptActivations?: { runs: number; hits: number; nodeShare: number; peakBytes: number };
  };
  /**
   * How weights were rounded (issue 15): `optimized` chose each weight's integer by GPTQ on the
   * calibration images; `structureFormats`: (structure, format) pairs computed,
   * `seconds`: time spent on it (included in search.seconds for a search).
   */
  rounding?: { method: 'nearest' | 'optimized'; structureFormats: number; seconds: number };
  classes: { count: number; source: string };
  preprocess: string;
  /** Held-out per-class top-1 and the confusion matrix (rows: true class, columns: predicted), fixed-point network. */
  perClass?: { classId: string; n: number; fpTop1: number; quantTop1: number }[];
  confusion?: number[][];
}

/** One line of RUN/trajectory.jsonl: a proposal of the search, accepted or rejected. */
export interface TrajectoryStep {
  step: number;
  phase: string;
  pass: number;
  structure: string | null;
  bits: number | null;
  frac: number | null;
  accepted: boolean;
  /** Top-1 drop (points) and its paired upper bound, against the budget in force (eps_t). */
  drop: number;
  bound: number;
  kl: number | null;
  budget: number;
  reduction: number;
  evaluations: number;
  images: number;
  note?: string;
}

// ---------------------------------------------------------------------------------------
// Projects: a folder with project.json, models/, datasets/, runs/, exports/

export interface ProjectModel {
  id: string;
  name: string;
  /** Relative to the project folder (models/<id>.onnx); a sidecar <id>.json is copied beside it. */
  file: string;
  sourcePath: string;
  addedAt: string;
  params: number;
  macs: number;
}

export type DatasetLayout = 'imagefolder' | 'imagenet-val' | 'csv';

export interface ProjectDataset {
  id: string;
  name: string;
  /** Relative to the project folder (datasets/<id>, holding dataset.json). */
  dir: string;
  /** Where the images were imported from (they stay there unless copied). */
  sourcePath: string;
  layout: DatasetLayout;
  copied: boolean;
  images: number;
  classes: number;
  skipped: number;
  duplicates: number;
  addedAt: string;
}

/** running and queued come from a live job; interrupted means a checkpoint without a result (resumable). */
export type RunState = 'queued' | 'running' | 'interrupted' | 'done' | 'failed' | 'cancelled';

export interface RunRequest {
  model: string;
  dataset: string;
  name?: string;
  /** Accuracy budget in top-1 points; absent with `uniform`. */
  budget?: number;
  /** Uniform baseline: every structure at this many bits. */
  uniform?: number;
  /** With `uniform`: the weights at this many bits instead (W4A8: uniform 8, weightBits 4). */
  weightBits?: number;
  /**
   * How weights are rounded (issue 15): GPTQ on the calibration images, or to nearest. Default:
   * optimized for a search on 1000 or more calibration images and for a uniform run on 50 or more, else nearest.
   */
  rounding?: 'nearest' | 'optimized';
  strategy?: 'schedule' | 'sensitivity' | 'tradeoff';
  calib?: number;
  eval?: number;
  seed?: number;
  slice?: number;
  /**
   * z of the paired bound the search accepts on (default 1): a larger z trades compression for
   * confidence that the held-out drop stays within the budget (BENCHMARKS.md, search).
   */
  z?: number;
  /**
   * z of the final check on D_c (default 2, at least z): the result rolls back to the last state
   * whose bound at this z meets the budget (BENCHMARKS.md, search).
   */
  finalZ?: number;
  distill?: boolean;
  biasCorrection?: boolean;
  /** The fractional-length choice among f0..f0+3 (default true; false keeps the range rule's f0). */
  fracChoice?: boolean;
  /** Cross-layer equalization of the model before quantization (default 'depthwise'). */
  equalize?: EqualizeMode;
}

/**
 * Cross-layer equalization at import: 'depthwise' (the default) equalizes the groups of layers
 * that hold a depthwise convolution, 'all' every group (pairs and residual streams), 'off' none.
 */
export type EqualizeMode = 'depthwise' | 'all' | 'off';

export interface RunSummary {
  fpTop1: number;
  quantTop1: number;
  drop: number;
  reduction: number;
  avgBitsWeights: number;
  avgBitsActivations: number;
}

export interface ProjectRun {
  id: string;
  name: string;
  /** Relative to the project folder (runs/<id>). */
  dir: string;
  request: RunRequest;
  state: RunState;
  /** A checkpoint exists and no result yet: `resumeRun` continues from it. */
  resumable: boolean;
  createdAt: string;
  finishedAt?: string;
  error?: ApiError;
  /** The live job of this run, when queued or running. */
  job?: string;
  summary?: RunSummary;
}

export type ResumeFrom = 'latest' | 'previous' | 'restart';

export type ExportFormat = 'qdq' | 'fxpq' | 'c';

export interface ExportResult {
  out: string;
  files: { name: string; bytes: number; note: string }[];
  qdq?: { images: number; top1Agreement: number; logitMismatches: number };
  fxpq?: { bytes: number; weightsBytes: number; manifestBytes: number; goldenBytes: number; expectedBytes: number };
  c?: {
    text: number;
    data: number;
    bss: number;
    goldenVectors: number;
    /** How weights are stored: bit-packed (smallest flash) or one C integer each (fastest). */
    weights: 'packed' | 'bytes';
    /** Flash of the weight arrays, RAM of the activation arena (planned by liveness), and the largest tensor. */
    weightsBytes: number;
    arenaBytes: number;
    /** The liveness lower bound of the activation RAM: the most bytes alive at one node (absent in older exports). */
    liveBytesBound?: number;
    /** RAM of the layers' scratch beside the arena (absent in exports made before it existed): a convolution's input staged channel-last, unpacked weight rows, a first layer's columns. */
    scratchBytes?: number;
    /** The host evaluation program (c/Makefile, c/eval/) run on the export's evaluation images: argmax equal to the integer executor's on `agree` of `images`; top-1 `correct` of `labelled` (absent in older exports). */
    evaluation?: { images: number; labelled: number; correct: number; agree: number };
    /** RAM one int32_t buffer per activation would take (before the plan). */
    unplannedBytes: number;
    largest: { tensor: string; bytes: number };
    /** Every activation: C type, bytes, offset in the arena, and the nodes it lives between. */
    plan: { tensor: string; type: string; bytes: number; offset: number; live: [number, number] }[];
  };
}

export interface ProjectExport {
  id: string;
  run: string;
  /** Relative to the project folder (exports/<id>). */
  dir: string;
  formats: ExportFormat[];
  state: 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';
  createdAt: string;
  error?: ApiError;
  job?: string;
  result?: ExportResult;
}

export interface Project {
  /** Absolute path of the project folder. */
  path: string;
  name: string;
  createdAt: string;
  models: ProjectModel[];
  datasets: ProjectDataset[];
  runs: ProjectRun[];
  exports: ProjectExport[];
}

export interface RecentProject {
  path: string;
  name: string;
  openedAt: string;
  /** The folder or its project.json is gone. */
  missing: boolean;
}

export interface ModelDetails {
  model: ProjectModel;
  inspect: InspectReport;
  /** The preprocessing spec and where it came from (sidecar, metadata, or the default). */
  preprocess: { spec: string; source: string };
  /** The model's own class list, when it has one. */
  classes: { ids: string[]; source: string } | null;
}

export interface DatasetImageEntry {
  /** Relative to the dataset's image root; the key for `datasetImage`. */
  path: string;
  classId: string;
  split: 'calib' | 'eval' | 'none';
}

export interface DatasetDetails {
  dataset: ProjectDataset;
  root: string;
  /** Images per class id, in class-list order when the dataset has one. */
  perClass: { classId: string; name?: string; count: number }[];
  split: { calib: number; eval: number; seed: number } | null;
  images: DatasetImageEntry[];
  skipped: { path: string; reason: string }[];
  duplicates: [string, string][];
}

export interface DatasetImportRequest {
  source: string;
  name?: string;
  layout?: DatasetLayout | 'auto';
  /** CSV labels file (csv layout) or ImageNet's LOC_val_solution.csv / ground-truth file. */
  labels?: string;
  /** `imagenet1k` or a class-list file. */
  classes?: string;
  synsets?: string;
  copy?: boolean;
}

/** What `detectDatasetLayout` finds in a folder before import. */
export interface LayoutGuess {
  layout: DatasetLayout;
  /** A labels file found beside the images, e.g. LOC_val_solution.csv or labels.csv. */
  labels?: string;
  reason: string;
}

/** A PNG as a data URL, for thumbnails and the preprocessed preview. */
export interface ImagePreview {
  dataUrl: string;
  width: number;
  height: number;
}

export interface HistogramData {
  tensor: string;
  kind: 'W' | 'B' | 'A';
  /** Bin edges (count + 1) and counts over the tensor's values (activations: calibration split). */
  edges: number[];
  counts: number[];
  /** The chosen format: its grid step 2^-frac and the representable range. */
  format: { bits: number; frac: number; signed: boolean; step: number; min: number; max: number };
}

/** An evaluation of a run's fixed-point network (and the float model) on a split of its dataset. */
export interface EvaluationResult {
  n: number;
  fp: { top1: number; top5: number };
  /** `n10`, `n01`, `dropStandardError`: as in RunReport's `quant`, when the float model ran too. */
  quant?: { top1: number; top5: number; agreement: number; n10?: number; n01?: number; dropStandardError?: number };
  perClass: Record<string, { n: number; top1: number }>;
  classes: { count: number; source: string };
  preprocess: string;
  skipped: { path: string; reason: string }[];
  cache: { hits: number; misses: number };
}

export interface RunResults {
  run: ProjectRun;
  report?: RunReport;
  trajectory: TrajectoryStep[];
  /** Per-layer sensitivity: the measured drop when only this layer's structures were reduced (from the trajectory). */
  sensitivity: {
    layer: string;
    kind: string;
    tensor: string;
    rejected: number;
    accepted: number;
    worstBound: number;
  }[];
}

export interface FolderEntry {
  name: string;
  path: string;
  kind: 'folder' | 'file';
}

export interface FolderListing {
  path: string;
  parent: string | null;
  entries: FolderEntry[];
}

// ---------------------------------------------------------------------------------------
// Jobs and their event stream

export type JobKind = 'inspect' | 'import' | 'quantize' | 'evaluate' | 'export';
export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface SearchProgressInfo {
  phase: string;
  pass: number;
  step: number;
  structure: string | null;
  drop: number;
  reduction: number;
  /** Bits of every structure (by id) in the current state. */
  bits: Record<string, number>;
  active: number;
  total: number;
}

export interface JobProgress {
  stage: string;
  done: number;
  total: number;
  etaSeconds?: number;
  search?: SearchProgressInfo;
}

export interface JobSnapshot {
  id: string;
  kind: JobKind;
  title: string;
  status: JobStatus;
  /** The project the job works in, and the run / dataset / export it produces. */
  project?: string;
  target?: { run?: string; dataset?: string; export?: string };
  /** Position in the queue (0 = next), while queued. */
  queuePosition?: number;
  queuedAt: string;
  startedAt?: string;
  finishedAt?: string;
  progress?: JobProgress;
  /** The search's steps so far (quantize jobs), for a late subscriber's trajectory chart. */
  steps: TrajectoryStep[];
  /** The last log lines. */
  log: string[];
  error?: ApiError;
  result?: unknown;
}

interface JobEventBase {
  /** Increases by one with every event of this app process: a client orders and de-duplicates by it. */
  seq: number;
  job: string;
  at: string;
}

export type JobEvent = JobEventBase &
  (
    | { type: 'queued'; snapshot: JobSnapshot }
    | { type: 'started' }
    | { type: 'progress'; progress: JobProgress }
    | { type: 'step'; step: TrajectoryStep }
    | { type: 'log'; line: string }
    | { type: 'finished'; result: unknown }
    | { type: 'failed'; error: ApiError }
    | { type: 'cancelled' }
  );

/** The stream a subscriber receives: first the current state of every job, then each event. */
export type AppEvent = { type: 'snapshot'; seq: number; jobs: JobSnapshot[] } | JobEvent;

/** The job queue's policy, visible to the UI. */
export interface QueuePolicy {
  /** Searches (quantize jobs) that run at once; more wait in the queue. */
  searches: number;
  /** Other jobs (imports, evaluations, exports, inspections) that run beside them. */
  others: number;
}

// ---------------------------------------------------------------------------------------
// The operations

export interface FxpqApi {
  appInfo(): Promise<AppInfo>;
  /** Inspect a model file on the machine that runs the services. */
  inspectModel(path: string): Promise<InspectReport>;

  /** A folder's subfolders and files (web mode: only below `browseRoots`). */
  listFolder(path: string): Promise<FolderListing>;
  /** Native dialogs (Electron only; the web host answers null and the UI shows its folder browser). */
  chooseFolder(title: string): Promise<string | null>;
  chooseFile(title: string, extensions: string[]): Promise<string | null>;
  /** Open a file or folder with the OS (Electron only; the web host answers false). */
  openPath(path: string): Promise<boolean>;

  createProject(dir: string, name: string): Promise<Project>;
  openProject(dir: string): Promise<Project>;
  recentProjects(): Promise<RecentProject[]>;
  renameProject(dir: string, name: string): Promise<Project>;
  /** Forget the project; with deleteFiles also delete its own files (never images it only references). */
  removeProject(dir: string, deleteFiles: boolean): Promise<void>;

  addModel(project: string, modelPath: string): Promise<Project>;
  modelDetails(project: string, modelId: string): Promise<ModelDetails>;
  removeModel(project: string, modelId: string): Promise<Project>;

  detectDatasetLayout(source: string): Promise<LayoutGuess>;
  /** Starts an import job; the dataset appears in the project when it is done. */
  importDataset(project: string, request: DatasetImportRequest): Promise<JobSnapshot>;
  datasetDetails(project: string, datasetId: string): Promise<DatasetDetails>;
  /** A thumbnail (size px, longest side), or with `modelId` the image as that model sees it after preprocessing. */
  datasetImage(
    project: string,
    datasetId: string,
    imagePath: string,
    size: number,
    modelId?: string,
  ): Promise<ImagePreview>;
  removeDataset(project: string, datasetId: string): Promise<Project>;

  /** Starts a quantize job (a search with a budget, or the uniform baseline). */
  startRun(project: string, request: RunRequest): Promise<JobSnapshot>;
  /**
   * Continues an interrupted, cancelled or failed run from its checkpoint: the latest one, the
   * one before it (when the latest is damaged), or none (`restart`: the search starts over).
   */
  resumeRun(project: string, runId: string, from?: ResumeFrom): Promise<JobSnapshot>;
  runResults(project: string, runId: string): Promise<RunResults>;
  /** Starts an evaluation job of a finished run: `int` is the integer-only executor, `sim` the simulation; the job's result is an EvaluationResult. */
  evaluateRun(
    project: string,
    runId: string,
    engine: 'sim' | 'int',
    split: 'eval' | 'calib' | 'all',
  ): Promise<JobSnapshot>;
  /** `structure`: a structure id (`W:tensor`, `B:tensor`, `A:tensor`) or, for compatibility, a bare tensor name. */
  structureHistogram(project: string, runId: string, structure: string): Promise<HistogramData>;
  removeRun(project: string, runId: string): Promise<Project>;

  /** `cWeights`: the C's weight storage, bit-packed (default, smallest flash) or one C integer each (fastest). */
  startExport(
    project: string,
    runId: string,
    formats: ExportFormat[],
    cWeights?: 'packed' | 'bytes',
  ): Promise<JobSnapshot>;

  listJobs(): Promise<JobSnapshot[]>;
  queuePolicy(): Promise<QueuePolicy>;
  cancelJob(id: string): Promise<void>;
}

/** What the renderer gets: the operations plus the event stream. */
export interface FxpqBridge extends FxpqApi {
  /** Calls `listener` with a snapshot, then with every job event, until the returned function is called. */
  subscribe(listener: (event: AppEvent) => void): () => void;
  /** Electron only: the path on disk of a File dropped on the window (webUtils.getPathForFile). */
  pathForFile?(file: unknown): string;
}

/** The names of every operation, for the IPC and HTTP dispatchers (a runtime list, kept next to the interface). */
export const API_METHODS = [
  'appInfo',
  'inspectModel',
  'listFolder',
  'chooseFolder',
  'chooseFile',
  'openPath',
  'createProject',
  'openProject',
  'recentProjects',
  'renameProject',
  'removeProject',
  'addModel',
  'modelDetails',
  'removeModel',
  'detectDatasetLayout',
  'importDataset',
  'datasetDetails',
  'datasetImage',
  'removeDataset',
  'startRun',
  'resumeRun',
  'runResults',
  'evaluateRun',
  'structureHistogram',
  'removeRun',
  'startExport',
  'listJobs',
  'queuePolicy',
  'cancelJob',
] as const satisfies ReadonlyArray<keyof FxpqApi>;
