/**
 * The typed API contract between the front ends and the renderer: the data shapes the
 * services return and the operations the renderer may call. Types only, no imports: the
 * Electron preload (IPC) and the web host (HTTP) both implement `FxpqApi`.
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
}

/** A failure the UI shows in its error panel: the message names the file and the problem. */
export interface ApiError {
  code: string;
  message: string;
}

export interface FxpqApi {
  appInfo(): Promise<AppInfo>;
  /** Inspect a model file on the machine that runs the services. */
  inspectModel(path: string): Promise<InspectReport>;
}
