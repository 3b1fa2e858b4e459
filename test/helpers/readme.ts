/**
 * Reads the shell commands of a README's ```sh blocks, with the outputs documented under them, so that a
 * test can run the commands as written and check what they print.
 *
 * Conventions (stated in the example READMEs): a comment line `# → <text>` right after a command is a line
 * that command prints, where `…` stands for anything; `# → the same as before` and `# → later than before`
 * compare with the previous output of the same command (a number, for "later"). Other comments, including
 * a comment at the end of a command line, are for people only.
 */

/** One command of a README and the outputs documented under it. */
export interface ReadmeCommand {
  /** Index of its ```sh block in the README. */
  block: number;
  /** The command, continuation lines joined, without a trailing comment. */
  command: string;
  /** The documented outputs (the text after `# → `). */
  expected: string[];
}

/** The commands of every ```sh block of `markdown`, in order. */
export function readmeCommands(markdown: string): ReadmeCommand[] {
  const commands: ReadmeCommand[] = [];
  const blocks = [...markdown.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```$/gm)];
  blocks.forEach((block, index) => {
    const lines = (block[1] ?? '').split('\n');
    let last: ReadmeCommand | undefined;
    for (let i = 0; i < lines.length; i++) {
      let line = lines[i] ?? '';
      const trimmed = line.trim();
      if (trimmed.startsWith('#')) {
        const documented = /^#\s*→\s?(.*)$/.exec(trimmed);
        if (documented && last) last.expected.push((documented[1] ?? '').trim());
        continue;
      }
      if (trimmed === '') continue;
      while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]?.trim()}`;
      last = { block: index, command: stripComment(line).trim().replace(/\s+/g, ' '), expected: [] };
      commands.push(last);
    }
  });
  return commands;
}

/** `line` without a `# comment` that starts outside quotes after whitespace. */
function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1] ?? ''))) {
      return line.slice(0, i);
    }
  }
  return line;
}

/**
 * Whether `output` shows the documented `expected` line. `previous` is the output of the last run of the
 * same command, for "the same as before" / "later than before".
 */
export function showsDocumented(output: string, expected: string, previous: string | undefined): boolean {
  if (expected === 'the same as before') return previous !== undefined && output === previous;
  if (expected === 'later than before') {
    return previous !== undefined && Number(output.trim()) > Number(previous.trim());
  }
  const pattern = new RegExp(`^${expected.split('…').map(escapeRegExp).join('.*')}$`);
  return output.split('\n').some((line) => pattern.test(line.replace(/\r$/, '').trim()));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** One ```ts block of a page. */
export interface TypeScriptSnippet {
  /** Line of the opening fence in the page (1-based). */
  line: number;
  /** The code between the fences. */
  code: string;
  /**
   * Why the snippet is intentionally partial, from a `<!-- snippet: partial (reason) -->` line right
   * before its fence; `undefined` for a whole snippet.
   */
  partial: string | undefined;
}

/** The marker of an intentionally partial snippet, on the line right before its fence. */
export const PARTIAL_MARKER = /^<!--\s*snippet:\s*partial\s*(?:\((.*)\))?\s*-->$/;

/** The ```ts (or ```typescript) blocks of `markdown`, in order. */
export function typeScriptSnippets(markdown: string): TypeScriptSnippet[] {
  const lines = markdown.split('\n');
  const snippets: TypeScriptSnippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(?:ts|typescript)\s*$/.test(lines[i] ?? '')) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i] ?? ''); i++) body.push(lines[i] ?? '');
    const marker = PARTIAL_MARKER.exec((lines[start - 1] ?? '').trim());
    snippets.push({
      line: start + 1,
      code: `${body.join('\n')}\n`,
      partial: marker ? (marker[1] ?? 'partial').trim() : undefined,
    });
  }
  return snippets;
}
