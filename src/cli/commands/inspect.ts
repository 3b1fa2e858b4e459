import type { Command } from 'commander';
import { type InspectOptions, inspectSession, type RegionSessionView } from '../../admin/inspect.js';
import { verifySessionCookie } from '../../middleware/session-cookie.js';
import { sessionIdProblem } from '../../validation/ids.js';
import { action, examples } from '../command.js';
import type { CliContext } from '../context.js';
import { CliError, ExitCode, UsageError } from '../errors.js';
import { formatTime, table } from '../output.js';

/**
 * `geosession inspect <sid | cookie>`: one session in every region side by side. A signed cookie
 * (`s:…`, URL-encoded or not, or a whole `name=value` pair) is unsigned first with `--secret`.
 */

interface InspectCommandOptions {
  secret?: string[];
  cookieFormat?: 'express' | 'fastify';
}

/** Registers `inspect` on `program`. */
export function register(program: Command): void {
  program
    .command('inspect')
    .description("show a session's value, version, expiry and tombstone in every region side by side")
    .argument('<sid|cookie>', 'a session id, or a signed session cookie (with --secret)')
    .option(
      '-s, --secret <secret>',
      "the app's session secret, to unsign a cookie (repeatable: every one is tried)",
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option(
      '--cookie-format <format>',
      'express (s:<sid>.<sig>, default) or fastify (<sid>.<sig>): how the cookie was signed',
    )
    .addHelpText(
      'after',
      `${examples([
        'inspect hk.vJ0q3GJxk6yq3cW8sQm0fD1p',
        'inspect \'s%3Ahk.vJ0q3GJxk6yq3cW8sQm0fD1p.Xq9…\' --secret "$SESSION_SECRET" --show-ids',
        'inspect hk.vJ0q3GJxk6yq3cW8sQm0fD1p --json',
      ])}
Exits 1 when no region holds the session (nor a tombstone or metadata of it).
`,
    )
    .action(
      action<InspectCommandOptions>(inspect, {
        check: (args, options) => void sessionIdOf(args[0] ?? '', options as InspectCommandOptions),
      }),
    );
}

/** The session id `input` names: itself, or the id a signed cookie carries. */
export function sessionIdOf(input: string, options: InspectCommandOptions): string {
  let value = input.trim();
  const eq = value.indexOf('=');
  // A whole `connect.sid=s%3A…` pair: drop the name.
  if (eq > 0 && /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(value.slice(0, eq))) value = value.slice(eq + 1);
  const format = options.cookieFormat ?? 'express';
  if (format !== 'express' && format !== 'fastify') {
    throw new UsageError(`--cookie-format must be express or fastify, got "${format}"`);
  }
  const looksSigned = /^s(:|%3A)/i.test(value);
  const secrets = options.secret ?? [];
  if (secrets.length === 0) {
    if (looksSigned) throw new UsageError('this is a signed cookie (s:…): give --secret to unsign it');
    const problem = sessionIdProblem(value);
    if (problem) throw new UsageError(`not a session id: it ${problem}`);
    return value;
  }
  const verified = verifySessionCookie(`c=${value}`, {
    secrets,
    format: looksSigned ? 'express' : format,
    name: 'c',
  });
  if (!verified) {
    throw new CliError(
      ExitCode.problem,
      'the cookie does not verify with any --secret (or is not a signed session cookie)',
    );
  }
  return verified.sid;
}

async function inspect(context: CliContext, args: string[], options: InspectCommandOptions): Promise<0 | 1> {
  const sid = sessionIdOf(args[0] ?? '', options);
  const settings: InspectOptions = {
    prefix: context.config.prefix,
    ...(context.config.outboxShards > 1 ? { outboxShards: context.config.outboxShards } : {}),
  };
  const views = await Promise.all(
    context.regions.map((region) =>
      context.inRegion(region.id, async () => (await inspectSession([region], sid, settings)).regions[0]),
    ),
  );
  const regions = views.filter((view): view is RegionSessionView => view !== undefined);
  const found = regions.some((view) => view.state !== 'absent');
  if (context.out.json) {
    context.out.data({ sid: context.out.id(sid), found, regions });
  } else {
    printText(context, sid, regions);
  }
  if (!found) context.out.note(`geosession: session ${context.out.id(sid)} is in no region`);
  return found ? ExitCode.ok : ExitCode.problem;
}

function printText(context: CliContext, sid: string, regions: readonly RegionSessionView[]): void {
  const column = (pick: (view: RegionSessionView) => string) => regions.map(pick);
  const rows: string[][] = [
    ['', ...regions.map((view) => view.region)],
    ['state', ...column((v) => v.state)],
    ['version', ...column((v) => v.meta?.version ?? '-')],
    [
      'expires',
      ...column((v) => (v.meta ? formatTime(v.meta.expiresAt) : formatTime(v.valueExpiresAt ?? undefined))),
    ],
    ['value expires', ...column((v) => (v.valueExpiresAt === null ? '-' : formatTime(v.valueExpiresAt)))],
    ['lifetime', ...column((v) => (v.meta?.lifetimeMs === undefined ? '-' : `${v.meta.lifetimeMs} ms`))],
    ['fingerprint', ...column((v) => v.meta?.fingerprint ?? '-')],
    ['metadata', ...column((v) => v.metaText ?? '-')],
  ];
  context.out.line(`session ${context.out.id(sid)}`);
  for (const line of table(rows)) context.out.line(`  ${line}`);
  // Values: once when every live region holds the same, else per region.
  const live = regions.filter((view) => view.state === 'live');
  const texts = live.map((view) =>
    view.valueIsRaw ? String(view.value) : JSON.stringify(view.value, null, 2),
  );
  if (live.length > 0 && texts.every((text) => text === texts[0])) {
    context.out.line(`value (${live.map((view) => view.region).join(', ')}):`);
    context.out.line(indent(texts[0] ?? ''));
  } else {
    live.forEach((view, i) => {
      context.out.line(`value in ${view.region}:`);
      context.out.line(indent(texts[i] ?? ''));
    });
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}
