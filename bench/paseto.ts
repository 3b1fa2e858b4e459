/**
 * PASETO suite.
 *
 * 1. Sealing: time to seal and to open one batch token, payloads of 1 KB and 100 KB (a JSON array of
 *    envelopes), v4.local and v4.public, with `createPasetoSealer`; and, for comparison, the same tokens
 *    made through the `paseto` package's protocol objects (whose base64url falls back to btoa/atob on
 *    Node 20).
 * 2. Token sessions over HTTP: requests per second of an express app authenticating every request with
 *    `pasetoSession` (Bearer v4.public token, session in GeoSessionStore) against the same app with plain
 *    express-session cookie sessions on the same store and Redis. The app runs in its own process, the
 *    load generator (autocannon) in this one; rounds alternate between the two apps.
 *
 * Flags: `--duration=<ms>` per HTTP round (5000), `--rounds=<n>` (3), `--connections=<n>` (32),
 * `--users=<n>` distinct sessions per app (500), `--seal-rounds=<n>` (3).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { LocalProtocol, PublicProtocol } from 'paseto';
import { ImportPublicKeyFactory, ImportSecretKeyFactory, SignFactory, VerifyFactory } from 'paseto/v4/public';
import { generatePasetoKey, generatePasetoKeyPair } from '../src/security/paseto-keys.js';
import { createPasetoSealer, type PasetoSealer } from '../src/security/paseto-sealer.js';
import { V4LocalDecryptFactory, V4LocalEncryptFactory, V4LocalKey } from '../src/security/paseto-v4-local.js';
import { REDIS_HOST, REDIS_PORT } from './lib/env.js';
import { median } from './lib/load.js';
import { BENCH_AUDIENCE, BENCH_ISSUER } from './lib/paseto-app-config.js';
import {
  type Cell,
  numberFlag,
  type Report,
  type Suite,
  type SuiteOptions,
  type Table,
} from './lib/suite.js';

const BINDING = { origin: 'hk', channel: 'sess:' };

/** A JSON array of session envelopes of about `bytes` bytes (quotes to escape, like a real batch). */
function batchPayload(bytes: number): string {
  const envelopes: object[] = [];
  let size = 2;
  for (let i = 0; size < bytes; i++) {
    const body = JSON.stringify({
      cookie: { expires: new Date().toISOString() },
      userId: `usr_${i}`,
      cart: [i],
    });
    const envelope = { id: `1719134045000-${i}`, origin: 'hk', kind: 'set', time: 1719134045000 + i, body };
    envelopes.push(envelope);
    size += JSON.stringify(envelope).length + 1;
  }
  return JSON.stringify(envelopes).slice(0, bytes);
}

interface Codec {
  seal(payload: string): Promise<string>;
  open(token: string): Promise<unknown>;
}

function sealerCodec(sealer: PasetoSealer, opener: PasetoSealer): Codec {
  return { seal: (p) => sealer.seal(p, BINDING), open: (t) => opener.open(t, BINDING) };
}

/** Microseconds per seal and per open, median of `rounds`. */
async function timeCodec(
  codec: Codec,
  payload: string,
  rounds: number,
): Promise<{ seal: number; open: number }> {
  const iterations = payload.length > 10_000 ? 200 : 2000;
  const seals: number[] = [];
  const opens: number[] = [];
  for (let i = 0; i < 20; i++) await codec.open(await codec.seal(payload));
  for (let round = 0; round < rounds; round++) {
    const tokens: string[] = [];
    let start = performance.now();
    for (let i = 0; i < iterations; i++) tokens.push(await codec.seal(payload));
    seals.push(((performance.now() - start) * 1000) / iterations);
    start = performance.now();
    for (const token of tokens) await codec.open(token);
    opens.push(((performance.now() - start) * 1000) / iterations);
  }
  return { seal: median(seals), open: median(opens) };
}

async function sealingTable(options: SuiteOptions): Promise<{ table: Table; data: unknown[] }> {
  const rounds = Math.floor(numberFlag(options, 'seal-rounds', 3));
  const key = generatePasetoKey();
  const hk = generatePasetoKeyPair();
  const local = createPasetoSealer({ purpose: 'local', deployment: 'bench', keys: [key.key] });
  const hkSealer = createPasetoSealer({
    purpose: 'public',
    deployment: 'bench',
    region: 'hk',
    secretKey: hk.secretKey,
    publicKeys: {},
  });
  const krOpener = createPasetoSealer({
    purpose: 'public',
    deployment: 'bench',
    region: 'kr',
    secretKey: generatePasetoKeyPair().secretKey,
    publicKeys: { hk: [hk.publicKey] },
  });
  // The same tokens through the `paseto` package's protocol objects.
  const v4local = new LocalProtocol(V4LocalEncryptFactory, V4LocalDecryptFactory);
  const localKey = V4LocalKey.fromPaserk(key.key);
  const v4public = new PublicProtocol(
    SignFactory,
    VerifyFactory,
    ImportSecretKeyFactory,
    ImportPublicKeyFactory,
  );
  const secret = await v4public.ImportSecretKey(hk.secretKey);
  const publicKey = await v4public.ImportPublicKey(hk.publicKey);
  const produce = { addIssuedAt: false, nonExpiring: true } as const;
  const codecs: Array<[string, Codec]> = [
    ['createPasetoSealer v4.local', sealerCodec(local, local)],
    ['createPasetoSealer v4.public', sealerCodec(hkSealer, krOpener)],
    [
      'paseto LocalProtocol v4.local',
      {
        seal: (p) => v4local.Encrypt(localKey, { p }, produce),
        open: (t) => v4local.Decrypt(localKey, t, { allowNonExpiring: true }),
      },
    ],
    [
      'paseto PublicProtocol v4.public',
      {
        seal: (p) => v4public.Sign(secret, { p }, produce),
        open: (t) => v4public.Verify(publicKey, t, { allowNonExpiring: true }),
      },
    ],
  ];
  const rows: Cell[][] = [];
  const data: unknown[] = [];
  for (const [label, codec] of codecs) {
    for (const bytes of [1024, 100 * 1024]) {
      options.log(`paseto: sealing, ${label}, ${bytes} bytes`);
      const { seal, open } = await timeCodec(codec, batchPayload(bytes), rounds);
      const both = seal + open;
      rows.push([label, `${bytes / 1024} KB`, seal, open, both, String(Math.round(1e6 / both))]);
      data.push({ label, bytes, sealUs: seal, openUs: open });
    }
  }
  return {
    table: {
      title: `Seal and open one batch token (median of ${rounds} rounds, one thread)`,
      columns: ['implementation', 'payload', 'seal µs', 'open µs', 'seal+open µs', 'seal+open /s'],
      rows,
    },
    data,
  };
}

const KINDS = ['paseto', 'nocache', 'cookie'] as const;
type Kind = (typeof KINDS)[number];

/** One app process. */
interface AppProcess {
  readonly base: string;
  readonly pid: number;
  stop(): Promise<void>;
}

async function startApp(env: Record<string, string>): Promise<AppProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'bench/lib/paseto-app.ts'], {
    env: { ...process.env, REDIS_HOST, REDIS_PORT: String(REDIS_PORT), ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`bench app exited with ${code}`)));
    lines.once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
  });
  return {
    base: `http://127.0.0.1:${port}`,
    pid: child.pid as number,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** CPU seconds (user + system) a process has used, from /proc (Linux); NaN elsewhere. */
function cpuSecondsOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

interface HttpRound {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  cpuUsPerRequest: number;
}

async function hammer(
  app: AppProcess,
  headerSets: Record<string, string>[],
  seconds: number,
  connections: number,
) {
  let next = 0;
  const cpuBefore = cpuSecondsOf(app.pid);
  const result = await autocannon({
    url: `${app.base}/me`,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'GET',
        setupRequest: (request) => {
          request.headers = { ...request.headers, ...headerSets[next++ % headerSets.length] };
          return request;
        },
      },
    ],
  });
  const cpu = cpuSecondsOf(app.pid) - cpuBefore;
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx + result.errors,
    cpuUsPerRequest: (cpu * 1e6) / Math.max(1, result.requests.total),
  } satisfies HttpRound;
}

async function tokensFor(users: number, secretKey: string, pid: string): Promise<string[]> {
  const protocol = new PublicProtocol(SignFactory, ImportSecretKeyFactory);
  const secret = await protocol.ImportSecretKey(secretKey as `k4.secret.${string}`);
  const footer = new TextEncoder().encode(JSON.stringify({ kid: pid }));
  return Promise.all(
    Array.from({ length: users }, (_, i) =>
      protocol.Sign(
        secret,
        { iss: BENCH_ISSUER, aud: BENCH_AUDIENCE, sub: `usr_${i}`, jti: `bench-${i}-${Date.now()}` },
        { footer, expiresIn: 3600 },
      ),
    ),
  );
}

async function dropPrefix(prefix: string): Promise<void> {
  const admin = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
  try {
    for (const pattern of [`${prefix}*`, `{${prefix}*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await admin.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    admin.disconnect();
  }
}

async function httpTable(
  options: SuiteOptions,
): Promise<{ tables: Table[]; data: unknown; notes: string[] }> {
  const seconds = Math.max(1, Math.round(numberFlag(options, 'duration', 5000) / 1000));
  const rounds = Math.floor(numberFlag(options, 'rounds', 3));
  const connections = Math.floor(numberFlag(options, 'connections', 32));
  const users = Math.floor(numberFlag(options, 'users', 500));
  const run = `gsbench:paseto:${process.pid}.${Date.now().toString(36)}:`;
  const issuer = generatePasetoKeyPair();
  const apps = {
    paseto: await startApp({ MODE: 'paseto', PREFIX: `${run}p:`, ISSUER_KEY: issuer.publicKey }),
    nocache: await startApp({
      MODE: 'paseto',
      PREFIX: `${run}p:`,
      ISSUER_KEY: issuer.publicKey,
      TOKEN_CACHE: '0',
    }),
    cookie: await startApp({ MODE: 'cookie', PREFIX: `${run}c:` }),
  };
  try {
    // Every measured request finds its session: tokens seen once, users logged in once.
    const tokens = await tokensFor(users, issuer.secretKey, issuer.pid);
    const bearer = tokens.map((token) => ({ authorization: `Bearer ${token}` }));
    for (const header of bearer) {
      const res = await fetch(`${apps.paseto.base}/me`, { headers: header });
      if (res.status !== 200) throw new Error(`paseto warm-up got ${res.status}`);
    }
    const cookies: Record<string, string>[] = [];
    for (let i = 0; i < users; i++) {
      const res = await fetch(`${apps.cookie.base}/login/usr_${i}`, { method: 'POST' });
      cookies.push({ cookie: (res.headers.get('set-cookie') ?? '').split(';')[0] as string });
    }
    const headers = { paseto: bearer, nocache: bearer, cookie: cookies };
    const results: Record<Kind, HttpRound[]> = { paseto: [], nocache: [], cookie: [] };
    for (const kind of KINDS) await hammer(apps[kind], headers[kind], 1, connections);
    for (let round = 0; round < rounds; round++) {
      // Rotate the order, so that drift on a shared machine hits every app alike.
      const order = KINDS.map((_, i) => KINDS[(i + round) % KINDS.length] as Kind);
      for (const kind of order) {
        const outcome = await hammer(apps[kind], headers[kind], seconds, connections);
        options.log(`paseto: http round ${round + 1}/${rounds} ${kind}: ${Math.round(outcome.rps)} req/s`);
        results[kind].push(outcome);
      }
    }
    const summary = (kind: Kind, label: string): Cell[] => {
      const list = results[kind];
      return [
        label,
        median(list.map((r) => r.rps)),
        list.map((r) => Math.round(r.rps)).join(' / '),
        median(list.map((r) => r.p50)),
        median(list.map((r) => r.p99)),
        median(list.map((r) => r.cpuUsPerRequest)),
        String(list.reduce((sum, r) => sum + r.non2xx, 0)),
      ];
    };
    const ratio = (kind: Kind, field: 'rps' | 'cpuUsPerRequest') =>
      Number(
        (median(results[kind].map((r) => r[field])) / median(results.cookie.map((r) => r[field]))).toFixed(2),
      );
    return {
      tables: [
        {
          title: `GET /me, express 5 + GeoSessionStore, ${connections} connections, ${users} sessions, ${seconds} s x ${rounds} interleaved rounds (medians)`,
          columns: ['app', 'req/s', 'req/s by round', 'p50 ms', 'p99 ms', 'app CPU µs/req', 'non-2xx'],
          rows: [
            summary('paseto', 'pasetoSession (Bearer v4.public)'),
            summary('nocache', 'pasetoSession, verifiedTokenCache: 0'),
            summary('cookie', 'express-session (signed cookie)'),
            [
              'ratio pasetoSession / cookie',
              ratio('paseto', 'rps'),
              '',
              '',
              '',
              ratio('paseto', 'cpuUsPerRequest'),
              '',
            ],
            [
              'ratio no cache / cookie',
              ratio('nocache', 'rps'),
              '',
              '',
              '',
              ratio('nocache', 'cpuUsPerRequest'),
              '',
            ],
          ],
        },
      ],
      data: results,
      notes: [
        'express-session runs with resave: false, saveUninitialized: false, so each read also touches the session.',
        'pasetoSession only reads Redis. With its default verifiedTokenCache every measured token was seen before',
        '(warm-up), so no signature is checked; with verifiedTokenCache: 0 every request checks one Ed25519 signature.',
      ],
    };
  } finally {
    await Promise.all(Object.values(apps).map((app) => app.stop()));
    await dropPrefix(run);
  }
}

/** The `paseto` suite. */
export const pasetoSuite: Suite = {
  name: 'paseto',
  description: 'PASETO batch sealing cost, and token-session requests/s against express-session cookies',
  async run(options) {
    const sealing = await sealingTable(options);
    const http = await httpTable(options);
    const report: Report = {
      tables: [sealing.table, ...http.tables],
      checks: [],
      notes: http.notes,
      data: { sealing: sealing.data, http: http.data },
    };
    return report;
  },
};
