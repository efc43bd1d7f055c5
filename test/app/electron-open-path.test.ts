/**
 * What Electron's "Open" hands to the operating system (issue 30): a folder inside a known
 * project, or the report.html of an export that project lists; never any other .html a project
 * from a zip may hold (it would open in a browser with file:// access), nor a link named
 * report.html to one.
 */
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openablePath } from '../../electron/main/open-path.js';

const tmp = realpathSync(mkdtempSync(join(tmpdir(), 'fxpq-open-path-')));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('openablePath', () => {
  it('opens folders and listed exports’ report.html only, reading project.json without changing it', async () => {
    const project = join(tmp, 'project');
    for (const d of ['exports/e1', 'exports/e2', 'exports/e3', 'models'])
      mkdirSync(join(project, d), { recursive: true });
    const doc = JSON.stringify({ format: 'fxpq-project', version: 1, exports: [{ id: 'e1' }, { id: 'e3' }] });
    writeFileSync(join(project, 'project.json'), doc);
    for (const d of ['exports/e1', 'exports/e2']) writeFileSync(join(project, d, 'report.html'), '<p>report</p>');
    writeFileSync(join(project, 'exports/e1/evil.html'), '<script>alert(1)</script>');
    writeFileSync(join(project, 'models/readme.html'), '<script>alert(1)</script>');
    writeFileSync(join(project, 'exports/e1/report.htm'), '<p>x</p>');
    // A listed export whose report.html is a link to another page of the project.
    symlinkSync(join(project, 'models/readme.html'), join(project, 'exports/e3/report.html'));
    const projects = [project];

    expect(await openablePath(join(project, 'exports/e1/report.html'), projects)).toBe(
      join(project, 'exports/e1/report.html'),
    );
    expect(await openablePath(join(project, 'exports/e1'), projects)).toBe(join(project, 'exports/e1'));
    expect(await openablePath(join(project, 'models'), projects)).toBe(join(project, 'models'));
    for (const path of [
      join(project, 'exports/e1/evil.html'), // any .html in a known project
      join(project, 'models/readme.html'),
      join(project, 'exports/e2/report.html'), // an export project.json does not list
      join(project, 'exports/e3/report.html'), // a link named report.html
      join(project, 'exports/e1/report.htm'),
      join(project, 'project.json'),
      '/etc/passwd',
      'exports/e1/report.html',
    ])
      await expect(openablePath(path, projects), path).rejects.toThrow(/was not opened/);
    // Without a readable project.json no report opens.
    rmSync(join(project, 'project.json'));
    await expect(openablePath(join(project, 'exports/e1/report.html'), projects)).rejects.toThrow(/was not opened/);
    writeFileSync(join(project, 'project.json'), doc);
    await openablePath(join(project, 'exports/e1/report.html'), projects);
    expect(readFileSync(join(project, 'project.json'), 'utf8')).toBe(doc);
  });
});
