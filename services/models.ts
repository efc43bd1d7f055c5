/** Model files: load, canonicalize and inspect, for every front end. */
import { inspectModel as inspectImported } from '../native-workers/engine/analysis/inspect.js';
import { importModel, type ImportedModel } from '../native-workers/engine/model.js';
import type { InspectReport } from '../api/contract.js';
import { readUserFile } from './files.js';

export async function loadModelFile(path: string): Promise<ImportedModel> {
  const bytes = await readUserFile(path, 'an ONNX model file');
  return importModel(bytes, path);
}

export async function inspectModelFile(path: string): Promise<InspectReport> {
  return inspectImported(await loadModelFile(path));
}
