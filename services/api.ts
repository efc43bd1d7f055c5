/** The service layer as the typed API contract: what the Electron IPC and the web host both expose. */
import type { ApiError, AppInfo, FxpqApi } from '../api/contract.js';
import { isFxpqError } from '../native-workers/engine/errors.js';
import { appInfo } from './app-info.js';
import { inspectModelFile } from './models.js';

export function serviceApi(host: AppInfo['host']): FxpqApi {
  return {
    appInfo: async () => appInfo(host),
    inspectModel: (path) => inspectModelFile(path),
  };
}

export const API_METHODS: ReadonlyArray<keyof FxpqApi> = ['appInfo', 'inspectModel'];

/** Answer one API call by name, as `{result}` or `{error}` (never a throw across the boundary). */
export async function dispatchApiCall(
  api: FxpqApi,
  method: string,
  args: unknown[],
): Promise<{ result: unknown } | { error: ApiError }> {
  if (!(API_METHODS as string[]).includes(method)) {
    return { error: { code: 'unknown-method', message: `Unknown API method ${method}.` } };
  }
  try {
    const fn = api[method as keyof FxpqApi] as (...a: unknown[]) => Promise<unknown>;
    return { result: await fn(...args) };
  } catch (e) {
    return { error: toApiError(e) };
  }
}

export function toApiError(e: unknown): ApiError {
  if (isFxpqError(e)) return { code: e.code, message: e.message };
  return { code: 'internal', message: `Internal error: ${(e as Error).message ?? String(e)}` };
}
