/**
 * Alerts and a periodic replication summary, posted as JSON to a webhook (Slack-style incoming hooks,
 * PagerDuty's Events API behind a small relay, your own endpoint…).
 *
 * Two regions, hk and kr, on the demo's backends (a private redis-server per region, or an in-memory
 * Redis; see examples/demo/backends.ts), write a session every 100 ms each. Every store's `onAlert`
 * hook posts each alert when it fires and when it clears, and every `--every` each region posts a
 * summary from `store.status()`: sessions replicated, lag p50/p99 per peer, the last event, the alerts
 * firing (like a "Session Sync Report").
 *
 *   npx tsx examples/alerts-webhook/index.ts --for 8s --every 2s --simulate-rejected
 *   npx tsx examples/alerts-webhook/index.ts --webhook https://hooks.example.com/T000/B000   # runs until Ctrl-C
 *
 * Without `--webhook`, a local receiver on 127.0.0.1 prints every request it gets.
 * `--simulate-rejected` forges one unsealed change "from hk" after a second: kr refuses it, and its
 * `rejected` and `deadLetters` alerts fire (and clear after `--quiet`, 3 s by default).
 */
import { createServer, type Server } from 'node:http';
import type { Redis } from 'ioredis';
import { maskSessionId } from '../../src/admin.js';
import { type Alert, GeoSessionStore, type StatusReport } from '../../src/index.js';
import { createPasetoSealer, generatePasetoKey } from '../../src/paseto.js';
import { openBackends } from '../demo/backends.js';
import { Teardown } from '../demo/teardown.js';

const PREFIX = 'alerts-demo:';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** `5s`, `2m`, `1500ms` or plain milliseconds. */
function duration(name: string, fallback: number | undefined): number | undefined {
  const text = option(name);
  if (text === undefined) return fallback;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  if (!match) throw new Error(`--${name} takes a duration such as 5s, 2m or 1500ms, not "${text}"`);
  const unit = match[2] === 's' ? 1000 : match[2] === 'm' ? 60_000 : 1;
  return Number(match[1]) * unit;
}

/** A local webhook receiver that prints each request's JSON body on one line. */
async function startReceiver(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString('utf8');
    });
    req.on('end', () => {
      console.log(`webhook received: ${body}`);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/hook`, server };
}

/** Posts `payload` as JSON; a webhook that fails is reported once per kind of failure, never thrown. */
function poster(url: string): (payload: unknown) => Promise<void> {
  const reported = new Set<string>();
  return async (payload) => {
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(5000),
      });
      await res.arrayBuffer();
      if (!res.ok && !reported.has(`status ${res.status}`)) {
        reported.add(`status ${res.status}`);
        console.error(`webhook answered ${res.status}`);
      }
    } catch (error) {
      const what = error instanceof Error ? error.message : String(error);
      if (!reported.has(what)) {
        reported.add(what);
        console.error(`webhook post failed: ${what}`);
      }
    }
  };
}

/** The summary a region posts: what the seed's "Session Sync Report" showed, from store.status(). */
function summary(report: StatusReport, lastEvent: LastEvent | undefined) {
  return {
    type: 'summary',
    region: report.region,
    at: new Date(report.at).toISOString(),
    transport: report.transport.state,
    sessionsReplicated: report.peers.reduce((n, p) => n + (p.received.applied ?? 0), 0),
    lag: Object.fromEntries(
      report.peers.map((p) => [p.region, p.lag ? { p50Ms: p.lag.p50Ms, p99Ms: p.lag.p99Ms } : null]),
    ),
    lastEvent: lastEvent ?? null,
    alertsFiring: report.alerts.map((a) => `${a.rule}${a.peer ? `:${a.peer}` : ''}`),
  };
}

interface LastEvent {
  op: string;
  sid: string;
  origin: string;
  at: string;
}

async function main(): Promise<void> {
  const forMs = duration('for', undefined);
  const everyMs = duration('every', 60_000) as number;
  const quietMs = duration('quiet', 3000) as number;
  const teardown = new Teardown();
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  process.once('SIGINT', () => stop());
  process.once('SIGTERM', () => stop());
  try {
    let url = option('webhook');
    if (!url) {
      const receiver = await startReceiver();
      teardown.add('stopping the receiver', () => new Promise((r) => receiver.server.close(r)));
      url = receiver.url;
    }
    const post = poster(url);
    const backends = await openBackends({}, PREFIX, teardown);
    const sealer = createPasetoSealer({
      purpose: 'local',
      deployment: 'alerts-demo',
      keys: [generatePasetoKey().key],
    });
    // Posts in flight, awaited before the end (each removes itself when done).
    const pending = new Set<Promise<void>>();
    const track = (work: Promise<void>) => {
      pending.add(work);
      work.finally(() => pending.delete(work));
    };
    const make = (region: string, client: Redis) => {
      const store = new GeoSessionStore({
        region,
        client,
        prefix: PREFIX,
        transport: backends.transport,
        sealer,
        statusIntervalMs: 500,
        alerts: { rejected: { quietMs }, deadLetters: { quietMs } },
        onAlert: (alert: Alert) => {
          track(
            post({
              type: 'alert',
              ...alert,
              since: new Date(alert.since).toISOString(),
              at: new Date(alert.at).toISOString(),
            }),
          );
        },
      });
      // Refusals are what the alerts report; other background errors are printed.
      store.on('error', (error) => {
        if (error.code !== 'ERR_GEOSESSION_SEAL' && error.code !== 'ERR_GEOSESSION_EVENT') {
          console.error(`[${region}] ${error.message}`);
        }
      });
      teardown.add(`closing the ${region} store`, () => store.close());
      let last: LastEvent | undefined;
      store.on('replicated', ({ events }) => {
        const event = events[events.length - 1];
        if (event)
          last = {
            op: event.op,
            sid: maskSessionId(event.sid),
            origin: event.origin,
            at: new Date().toISOString(),
          };
      });
      return { store, lastEvent: () => last };
    };
    const regions = [make('hk', backends.hk), make('kr', backends.kr)];
    await Promise.all(regions.map((r) => r.store.ready()));
    console.log(`alerts-webhook: ${backends.description}; posting to ${url}`);

    const timers: NodeJS.Timeout[] = [];
    teardown.add('stopping the timers', () => {
      for (const timer of timers) clearInterval(timer);
    });
    // Traffic: each region writes a session every 100 ms.
    timers.push(
      setInterval(() => {
        for (const { store } of regions) {
          store.set(store.genid(), { cookie: { originalMaxAge: 60_000 } }).catch(() => {});
        }
      }, 100),
    );
    timers.push(
      setInterval(() => {
        for (const r of regions) {
          track(
            r.store.status().then(
              (report) => post(summary(report, r.lastEvent())),
              () => {},
            ),
          );
        }
      }, everyMs),
    );
    if (process.argv.includes('--simulate-rejected')) {
      setTimeout(() => {
        const forged = {
          id: `forged-${Date.now()}`,
          origin: 'hk',
          kind: 'session',
          time: Date.now(),
          body: '{}',
        };
        backends.transport.publish(PREFIX, [forged]).catch(() => {});
      }, 1000).unref();
    }
    const ended =
      forMs === undefined ? stopped : Promise.race([stopped, new Promise((r) => setTimeout(r, forMs))]);
    await ended;
    for (const timer of timers.splice(0)) clearInterval(timer);
    await Promise.all([...pending]);
  } finally {
    await teardown.run();
  }
  console.log('bye');
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
