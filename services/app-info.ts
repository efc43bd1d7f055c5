import { readFileSync } from 'node:fs';
import type { AppInfo } from '../api/contract.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

export function appInfo(host: AppInfo['host']): AppInfo {
  return { name: 'FxPQ', version: pkg.version, host };
}
