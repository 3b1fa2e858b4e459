/**
 * Every relative link of the documentation leads somewhere: README.md, CHANGELOG.md, every page under
 * docs/ and every examples/<name>/README.md (found afresh each run), each `[text](path)` or
 * `[text](path#anchor)` that is not a URL names a file or directory of the repository, and its anchor a
 * heading of that page (GitHub's rule: lower case, punctuation dropped, spaces to `-`).
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { expect, it } from 'vitest';

const ROOT = process.cwd();

async function pages(): Promise<string[]> {
  const found = ['README.md', 'CHANGELOG.md'];
  for (const entry of await readdir(join(ROOT, 'docs'), { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.md'))
      found.push(relative(ROOT, join(entry.parentPath, entry.name)));
  }
  for (const entry of await readdir(join(ROOT, 'examples'), { withFileTypes: true })) {
    const readme = join('examples', entry.name, 'README.md');
    if (entry.isDirectory() && existsSync(join(ROOT, readme))) found.push(readme);
  }
  return found.sort();
}

/** GitHub's anchor of a heading. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** The anchors of a page's headings (outside code blocks), with GitHub's `-1`, `-2` for repeats. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^```/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*)$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1] ?? '');
    let name = base;
    for (let i = 1; out.has(name); i++) name = `${base}-${i}`;
    out.add(name);
  }
  return out;
}

it('every relative link of the documentation leads to a file and a heading that exist', async () => {
  const broken: string[] = [];
  for (const page of await pages()) {
    const text = await readFile(join(ROOT, page), 'utf8');
    const prose = text.replace(/^```[\s\S]*?^```$/gm, '');
    for (const match of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
      const link = match[1] ?? '';
      if (/^[a-z]+:/i.test(link)) continue; // a URL
      const [path = '', anchor] = link.split('#');
      const target = path === '' ? join(ROOT, page) : join(ROOT, dirname(page), path);
      if (!existsSync(target)) {
        broken.push(`${page}: ${link} (no such file)`);
        continue;
      }
      if (anchor === undefined || !target.endsWith('.md')) continue;
      if (!anchors(await readFile(target, 'utf8')).has(anchor))
        broken.push(`${page}: ${link} (no such heading)`);
    }
  }
  expect(broken).toEqual([]);
});
