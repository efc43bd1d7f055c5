import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/fixtures.js';

const eslint = new ESLint({ cwd: repoRoot });

async function violations(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(repoRoot, file) });
  return result!.messages
    .filter((m) => m.ruleId === 'no-restricted-imports' || m.ruleId === 'no-restricted-globals')
    .map((m) => m.message);
}

describe('layer rule (engine <- services <- front ends <- renderer)', () => {
  it('stops the engine importing services, the file system or process globals', async () => {
    const v = await violations(
      'native-workers/engine/probe.ts',
      "import { loadModelFile } from '../../services/models.js';\nimport { readFileSync } from 'node:fs';\nexport const x = [loadModelFile, readFileSync, process.env];\n",
    );
    expect(v).toHaveLength(3);
  });

  it('stops services importing Electron or a front end', async () => {
    const v = await violations(
      'services/probe.ts',
      "import { app } from 'electron';\nimport { main } from '../cli/main.js';\nexport const x = [app, main];\n",
    );
    expect(v).toHaveLength(2);
  });

  it('lets the renderer import the API contract only', async () => {
    expect(
      await violations(
        'renderer/src/probe.ts',
        "import type { FxpqApi } from '../../api/contract';\nexport type X = FxpqApi;\n",
      ),
    ).toEqual([]);
    const v = await violations(
      'renderer/src/probe.ts',
      "import { inspectModelFile } from '../../services/models.js';\nimport { readFile } from 'node:fs/promises';\nexport const x = [inspectModelFile, readFile];\n",
    );
    expect(v).toHaveLength(2);
  });

  it('holds for every file in the tree, .vue files included', async () => {
    const results = await eslint.lintFiles(['.']);
    const errors = results.flatMap((r) =>
      r.messages.filter((m) => m.severity === 2).map((m) => `${relative(repoRoot, r.filePath)}: ${m.message}`),
    );
    expect(errors).toEqual([]);
    // ESLint does not parse .vue here: check their imports by hand.
    const vueDir = join(repoRoot, 'renderer', 'src');
    const vueFiles = readdirSync(vueDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.vue'));
    expect(vueFiles.length).toBeGreaterThan(0);
    for (const f of vueFiles) {
      const imports = [...readFileSync(join(vueDir, f), 'utf8').matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]!);
      for (const i of imports)
        expect(i, `${f} imports ${i}`).toMatch(
          /^(vue|pinia|\.\/(?!.*native-workers|.*services).*|\.\.\/\.\.\/api\/.*)$/,
        );
    }
  });
});
