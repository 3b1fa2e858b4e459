/**
 * Every TypeScript snippet of the documentation compiles as written: README.md, every page under docs/
 * (at any depth) and every examples/<name>/README.md, found afresh on each run so that a new page or
 * example is covered without touching this file. Each ```ts block becomes a module of its own and is
 * type-checked (strict, like the project) with `geosession` and its subpaths mapped to src/, so that a
 * missing import, a wrong option or a handle the snippet never made fails here before a reader meets it.
 *
 * A snippet that is a fragment on purpose (a line to add to code shown before, a shape with `...`) is
 * marked with an HTML comment on the line right before its fence, which the rendered page does not show:
 *
 *     <!-- snippet: partial (why it cannot stand alone) -->
 *     ```ts
 *
 * A partial snippet is still parsed (a syntax error fails), but not type-checked. Use it sparingly: a
 * snippet a reader may paste should declare or import what it uses instead (`declare const redis:
 * Redis;` costs one line). The test also fails when more than a quarter of all snippets are partial.
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { expect, it } from 'vitest';
import { type TypeScriptSnippet, typeScriptSnippets } from './helpers/readme.js';

const run = promisify(execFile);
const ROOT = process.cwd();

/** README.md, docs/**\/*.md and examples/*\/README.md, relative to the root, sorted. */
async function documentationPages(): Promise<string[]> {
  const pages = ['README.md'];
  const docs = await readdir(join(ROOT, 'docs'), { recursive: true, withFileTypes: true });
  for (const entry of docs) {
    if (entry.isFile() && entry.name.endsWith('.md'))
      pages.push(relative(ROOT, join(entry.parentPath, entry.name)));
  }
  for (const entry of await readdir(join(ROOT, 'examples'), { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const readme = join('examples', entry.name, 'README.md');
    if (
      await readFile(join(ROOT, readme)).then(
        () => true,
        () => false,
      )
    )
      pages.push(readme);
  }
  return pages.sort();
}

interface Located extends TypeScriptSnippet {
  page: string;
  file: string;
}

it('every TypeScript snippet of README.md, docs/ and the examples compiles', {
  timeout: 120_000,
}, async () => {
  const pages = await documentationPages();
  expect(pages).toContain('docs/paseto.md');
  expect(pages.filter((page) => page.startsWith('examples/')).length).toBeGreaterThanOrEqual(5);

  const snippets: Located[] = [];
  for (const page of pages) {
    const found = typeScriptSnippets(await readFile(join(ROOT, page), 'utf8'));
    found.forEach((snippet, i) => {
      const file = `${page.replace(/\.md$/, '').replace(/[^A-Za-z0-9]+/g, '-')}-${i + 1}.mts`;
      snippets.push({ ...snippet, page, file });
    });
  }
  expect(snippets.filter((s) => s.page === 'README.md').length).toBeGreaterThanOrEqual(4);
  expect(snippets.filter((s) => s.page === 'docs/paseto.md').length).toBeGreaterThanOrEqual(1);

  // Partial snippets: syntax only, and few of them.
  const partial = snippets.filter((s) => s.partial !== undefined);
  expect(partial.length, 'partial snippets (see the file comment)').toBeLessThanOrEqual(snippets.length / 4);
  const syntax = partial.flatMap((s) => {
    const out = ts.transpileModule(s.code, { reportDiagnostics: true, fileName: s.file });
    return (out.diagnostics ?? []).map(
      (d) => `${s.page}:${s.line} (partial): ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`,
    );
  });
  expect(syntax, 'syntax errors in partial snippets').toEqual([]);

  // Whole snippets: type-checked, inside the repository so that their imports resolve to its node_modules.
  const whole = snippets.filter((s) => s.partial === undefined);
  const dir = join(ROOT, '.scratch', `doc-snippets-${process.pid}`);
  await mkdir(dir, { recursive: true });
  try {
    await Promise.all(whole.map((s) => writeFile(join(dir, s.file), s.code)));
    const tsconfig = {
      compilerOptions: {
        strict: true,
        noUncheckedIndexedAccess: true,
        noEmit: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        lib: ['es2023'],
        types: ['node'],
        skipLibCheck: true,
        allowImportingTsExtensions: true,
        paths: {
          geosession: ['../../src/index.ts'],
          'geosession/*': ['../../src/*.ts'],
        },
      },
      files: whole.map((s) => s.file),
    };
    await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
    const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
    const output = await run(tsc, ['-p', join(dir, 'tsconfig.json'), '--pretty', 'false'], { cwd: dir }).then(
      () => '',
      (error: { stdout?: string; stderr?: string }) => `${error.stdout ?? ''}${error.stderr ?? ''}`,
    );
    // Each error names its page and the line in that page: `<file>.mts(l,c)` → `<page>:<fence + l>`.
    const byFile = new Map(whole.map((s) => [s.file, s]));
    const errors = output
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) =>
        line.replace(/^(\S+\.mts)\((\d+),(\d+)\)/, (all, file: string, l: string) => {
          const s = byFile.get(file);
          return s ? `${s.page}:${s.line + Number(l)}` : all;
        }),
      );
    expect(errors, 'tsc on the documentation snippets').toEqual([]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
