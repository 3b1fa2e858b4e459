/**
 * The README's TypeScript snippets compile as written: each ```ts block becomes a module of its own and
 * is type-checked (strict, like the project) with `geosession` and its subpaths mapped to src/, so that a
 * missing import, a wrong option or a handle the snippet never made fails here before a reader meets it.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = process.cwd();

it('every TypeScript snippet of the README compiles', { timeout: 60_000 }, async () => {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const snippets = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? '');
  expect(snippets.length).toBeGreaterThanOrEqual(4);

  // Inside the repository, so that the snippets' imports resolve to its node_modules.
  const dir = join(ROOT, '.scratch', `readme-snippets-${process.pid}`);
  await mkdir(dir, { recursive: true });
  try {
    const files = await Promise.all(
      snippets.map(async (code, i) => {
        const file = `snippet-${i + 1}.mts`;
        await writeFile(join(dir, file), code);
        return file;
      }),
    );
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
      files,
    };
    await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
    const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
    const result = await run(tsc, ['-p', join(dir, 'tsconfig.json')], { cwd: dir }).then(
      () => '',
      (error: { stdout?: string; stderr?: string }) => `${error.stdout ?? ''}${error.stderr ?? ''}`,
    );
    const numbered = snippets.map((code, i) => `--- snippet-${i + 1}.mts\n${code}`).join('\n');
    expect(result, `tsc on the README's snippets:\n${result}\n${numbered}`).toBe('');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
