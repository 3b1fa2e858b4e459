/**
 * examples/alerts-webhook as its README tells a newcomer to run it: every command of its ```sh blocks
 * runs as written (each ends on its own, `--for`), exits 0 with nothing on stderr, and prints every
 * line documented under it (`# → …`).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { readmeCommands, showsDocumented } from '../helpers/readme.js';

function run(command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('examples/alerts-webhook README', async () => {
  const readme = await readFile('examples/alerts-webhook/README.md', 'utf8');
  const commands = readmeCommands(readme);

  it('has commands to run', () => {
    expect(commands.length).toBeGreaterThanOrEqual(2);
  });

  for (const { command, expected } of commands) {
    it(`runs: ${command}`, async () => {
      const { code, stdout, stderr } = await run(command);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      for (const line of expected) {
        expect(
          showsDocumented(stdout, line, undefined),
          `${command}\nshould print: ${line}\n---\n${stdout}`,
        ).toBe(true);
      }
    }, 90_000);
  }
});
