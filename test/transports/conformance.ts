import { afterEach, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import type {
  Poison,
  ReplicationTransport,
  SubscribeOptions,
  Subscription,
} from '../../src/contracts/transport.js';
import { TransientError } from '../../src/errors.js';
import { Pipeline } from '../../src/replication/pipeline.js';
import { eventually } from '../helpers/servers.js';

/** What a transport's test file provides to the shared conformance suite. */
export interface ConformanceHarness {
  /** Three region ids the transport was set up for. */
  readonly regions: readonly [string, string, string];
  /** The transport as a process of `region` would hold it (one shared instance is fine). */
  transport(region: string): ReplicationTransport;
  /** Extra subscribe options (Redis Streams: read what `publish` wrote, the published streams). */
  readonly subscribeOptions?: Partial<SubscribeOptions>;
  /**
   * Puts a frame that is not an envelope where `region`'s subscribers on `channel` will read it, from
   * `origin` (a raw XADD, a raw AMQP or NATS publish). Absent for transports that move objects.
   */
  injectRaw?(channel: string, origin: string, raw: string): Promise<void>;
  /** Releases everything the harness created (the suite closes the transports first). */
  cleanup(): Promise<void>;
}

let seq = 0;
/** An envelope made in `origin`, unique within the run; its body holds line breaks and bars. */
export function sampleEvent(origin: string, kind = 'test'): Envelope {
  seq++;
  return {
    id: `${origin}:${Date.now()}-${seq}`,
    origin,
    kind,
    time: Date.now(),
    body: `s|${seq}|x\n${JSON.stringify({ cookie: { originalMaxAge: 60_000 }, n: seq, text: 'a\nb|c' })}`,
  };
}

/** Collects what a region receives. */
class Inbox {
  readonly events: Envelope[] = [];
  readonly batches: number[] = [];
  ids(): Set<string> {
    return new Set(this.events.map((e) => e.id));
  }
}

/**
 * The behaviour every replication transport must have. Each test uses a fresh channel, so state left
 * on a broker by one test never reaches another.
 */
export function transportConformance(name: string, makeHarness: () => Promise<ConformanceHarness>): void {
  describe(`${name} transport conformance`, () => {
    let harness: ConformanceHarness | undefined;
    const subs: Subscription[] = [];
    const channel = () => `conf${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}:`;

    async function setup() {
      harness = await makeHarness();
      return harness;
    }

    afterEach(async () => {
      await Promise.all(subs.splice(0).map((s) => s.close().catch(() => {})));
      if (harness) {
        const transports = new Set(harness.regions.map((r) => harness?.transport(r)));
        await Promise.all([...transports].map((t) => t?.close()));
        await harness.cleanup();
        harness = undefined;
      }
    });

    async function subscribe(
      h: ConformanceHarness,
      ch: string,
      region: string,
      inbox: Inbox,
      fail = () => false,
    ) {
      const sub = await h.transport(region).subscribe({
        ...h.subscribeOptions,
        channel: ch,
        region,
        maxBatch: 50,
        handler: async (events) => {
          if (fail()) throw new Error('handler failed on purpose');
          inbox.batches.push(events.length);
          inbox.events.push(...events);
        },
      });
      subs.push(sub);
      return sub;
    }

    it('delivers to every other region and never back to the origin', async () => {
      const h = await setup();
      const [a, b, c] = h.regions;
      const ch = channel();
      const inboxes = { [a]: new Inbox(), [b]: new Inbox(), [c]: new Inbox() };
      for (const r of h.regions) await subscribe(h, ch, r, inboxes[r] as Inbox);
      const fromA = Array.from({ length: 120 }, () => sampleEvent(a));
      const fromB = Array.from({ length: 30 }, () => sampleEvent(b));
      // In calls of at most maxBatch: broker transports carry a call's envelopes in one message and
      // never split a message across batches.
      for (let i = 0; i < fromA.length; i += 40) await h.transport(a).publish(ch, fromA.slice(i, i + 40));
      await h.transport(b).publish(ch, fromB);
      const want = (events: Envelope[]) => events.map((e) => e.id);
      await eventually(() => (inboxes[c] as Inbox).ids().size === 150);
      await eventually(() => (inboxes[b] as Inbox).ids().size === 120);
      await eventually(() => (inboxes[a] as Inbox).ids().size === 30);
      expect([...(inboxes[c] as Inbox).ids()].sort()).toEqual([...want(fromA), ...want(fromB)].sort());
      expect([...(inboxes[b] as Inbox).ids()].sort()).toEqual(want(fromA).sort());
      expect([...(inboxes[a] as Inbox).ids()].sort()).toEqual(want(fromB).sort());
      // Events arrive whole: same fields as published.
      const got = (inboxes[b] as Inbox).events.find((e) => e.id === fromA[0]?.id);
      expect(got).toEqual(fromA[0]);
      for (const r of h.regions) {
        expect((inboxes[r] as Inbox).events.every((e) => e.origin !== r)).toBe(true);
        expect(Math.max(...(inboxes[r] as Inbox).batches)).toBeLessThanOrEqual(50);
      }
    });

    it('acknowledges a batch once its handler resolved: nothing comes back after a resubscribe', async () => {
      const h = await setup();
      const [a, b] = h.regions;
      const ch = channel();
      const first = new Inbox();
      const sub = await subscribe(h, ch, b, first);
      const events = Array.from({ length: 20 }, () => sampleEvent(a));
      await h.transport(a).publish(ch, events);
      await eventually(() => first.ids().size === 20);
      await sub.close();
      const second = new Inbox();
      await subscribe(h, ch, b, second);
      const marker = sampleEvent(a);
      await h.transport(a).publish(ch, [marker]);
      await eventually(() => second.ids().has(marker.id));
      expect(second.events.filter((e) => e.id !== marker.id)).toEqual([]);
    });

    it('delivers a batch again after its handler rejected', async () => {
      const h = await setup();
      const [a, b] = h.regions;
      const ch = channel();
      const inbox = new Inbox();
      let failures = 0;
      await subscribe(h, ch, b, inbox, () => failures++ < 2);
      const events = Array.from({ length: 10 }, () => sampleEvent(a));
      await h.transport(a).publish(ch, events);
      await eventually(() => inbox.ids().size === 10, 20_000);
      expect(failures).toBeGreaterThanOrEqual(2);
    });

    it('delivers a batch rejected with a TransientError again, without reporting it itself', async () => {
      const h = await setup();
      const [a, b] = h.regions;
      const ch = channel();
      const reported: Error[] = [];
      const onError = (error: Error) => reported.push(error);
      h.transport(b).on('error', onError);
      const inbox = new Inbox();
      let failures = 0;
      const sub = await h.transport(b).subscribe({
        ...h.subscribeOptions,
        channel: ch,
        region: b,
        handler: async (events) => {
          // What the pipeline throws when the region's Redis is out of memory (it reports it itself).
          if (failures++ < 3) throw new TransientError('OOM', 'OOM command not allowed');
          inbox.events.push(...events);
        },
      });
      subs.push(sub);
      const events = Array.from({ length: 10 }, () => sampleEvent(a));
      await h.transport(a).publish(ch, events);
      await eventually(() => inbox.ids().size === 10, 20_000);
      h.transport(b).off('error', onError);
      expect(failures).toBeGreaterThanOrEqual(4);
      const transient = (e: Error) => e instanceof TransientError || e.cause instanceof TransientError;
      expect(reported.filter(transient)).toEqual([]);
    });

    it('keeps events for a region that is away and delivers them when it subscribes', async () => {
      const h = await setup();
      const [a, b, c] = h.regions;
      const ch = channel();
      // Region c subscribes once so the transport knows it, then goes away.
      const early = new Inbox();
      const sub = await subscribe(h, ch, c, early);
      await sub.close();
      const inboxB = new Inbox();
      await subscribe(h, ch, b, inboxB);
      const events = Array.from({ length: 25 }, () => sampleEvent(a));
      await h.transport(a).publish(ch, events);
      await eventually(() => inboxB.ids().size === 25);
      const late = new Inbox();
      await subscribe(h, ch, c, late);
      await eventually(() => late.ids().size === 25, 20_000);
    });

    it('survives a duplicate publish: every id arrives, and at most twice', async () => {
      const h = await setup();
      const [a, b] = h.regions;
      const ch = channel();
      const inbox = new Inbox();
      await subscribe(h, ch, b, inbox);
      const event = sampleEvent(a);
      await h.transport(a).publish(ch, [event]);
      await h.transport(a).publish(ch, [event]);
      const marker = sampleEvent(a);
      await h.transport(a).publish(ch, [marker]);
      await eventually(() => inbox.ids().has(marker.id) && inbox.ids().has(event.id));
      const copies = inbox.events.filter((e) => e.id === event.id).length;
      expect(copies).toBeGreaterThanOrEqual(1);
      expect(copies).toBeLessThanOrEqual(2);
    });

    it('keeps channels apart', async () => {
      const h = await setup();
      const [a, b] = h.regions;
      const one = channel();
      const two = channel();
      const inboxOne = new Inbox();
      const inboxTwo = new Inbox();
      await subscribe(h, one, b, inboxOne);
      await subscribe(h, two, b, inboxTwo);
      const e1 = sampleEvent(a);
      const e2 = sampleEvent(a);
      await h.transport(a).publish(one, [e1]);
      await h.transport(a).publish(two, [e2]);
      await eventually(() => inboxOne.events.length >= 1 && inboxTwo.events.length >= 1);
      expect([...inboxOne.ids()]).toEqual([e1.id]);
      expect([...inboxTwo.ids()]).toEqual([e2.id]);
    });

    it('close waits for the batch in flight and acknowledges it', async () => {
      const h = await setup();
      const [a, b] = h.regions;
      const ch = channel();
      let release: () => void = () => {};
      const gate = new Promise<void>((r) => {
        release = r;
      });
      let started = false;
      let finished = false;
      const sub = await h.transport(b).subscribe({
        ...h.subscribeOptions,
        channel: ch,
        region: b,
        handler: async () => {
          started = true;
          await gate;
          finished = true;
        },
      });
      const event = sampleEvent(a);
      await h.transport(a).publish(ch, [event]);
      await eventually(() => started);
      let closed = false;
      const closing = sub.close().then(() => {
        closed = true;
      });
      await new Promise((r) => setTimeout(r, 100));
      expect(closed).toBe(false);
      release();
      await closing;
      expect(finished).toBe(true);
      // It was acknowledged: a new subscription does not get it again.
      const again = new Inbox();
      await subscribe(h, ch, b, again);
      const marker = sampleEvent(a);
      await h.transport(a).publish(ch, [marker]);
      await eventually(() => again.ids().has(marker.id));
      expect(again.ids().has(event.id)).toBe(false);
    });

    it('a subscribe abandoned through its signal rejects with a ClosedError and leaves nothing running', async () => {
      const h = await setup();
      const [a, b] = h.regions;
      const ch = channel();
      const abandoned = new Inbox();
      const options = (signal: AbortSignal): SubscribeOptions => ({
        ...h.subscribeOptions,
        channel: ch,
        region: b,
        handler: async (events) => {
          abandoned.events.push(...events);
        },
        signal,
      });
      const before = new AbortController();
      before.abort();
      await expect(h.transport(b).subscribe(options(before.signal))).rejects.toThrow(/closed/);
      // Aborted while it starts: it rejects, or (a transport with nothing to wait for) it had resolved
      // already, and then the subscription is closed as usual.
      const during = new AbortController();
      const subscribing = h.transport(b).subscribe(options(during.signal));
      during.abort();
      const sub = await subscribing.catch((error: unknown) => {
        expect(String(error)).toMatch(/closed/);
        return undefined;
      });
      await sub?.close();
      // A later subscriber of that region gets what is published; the abandoned ones get nothing.
      const inbox = new Inbox();
      await subscribe(h, ch, b, inbox);
      const events = Array.from({ length: 5 }, () => sampleEvent(a));
      await h.transport(a).publish(ch, events);
      await eventually(() => inbox.ids().size === 5, 20_000);
      expect(abandoned.events).toEqual([]);
    });

    it('rejects publish and subscribe after close', async () => {
      const h = await setup();
      const [a, b] = h.regions;
      const t = h.transport(a);
      await t.close();
      expect(t.state).toBe('closed');
      await expect(t.publish(channel(), [sampleEvent(a)])).rejects.toThrow(/closed/);
      await expect(t.subscribe({ channel: channel(), region: b, handler: async () => {} })).rejects.toThrow(
        /closed/,
      );
    });

    it('hands frames that are not envelopes to onPoison, acknowledges them, and keeps flowing', async (ctx) => {
      const h = await setup();
      if (!h.injectRaw) return ctx.skip();
      const [a, b] = h.regions;
      const ch = channel();
      const inbox = new Inbox();
      const poison: Poison[] = [];
      const sub = await h.transport(b).subscribe({
        ...h.subscribeOptions,
        channel: ch,
        region: b,
        handler: async (events) => {
          inbox.events.push(...events);
        },
        onPoison: (p) => poison.push(p),
      });
      subs.push(sub);
      await h.injectRaw(ch, a, '{"o":"s","r":"hk"} not an envelope');
      const after = sampleEvent(a);
      await h.transport(a).publish(ch, [after]);
      await eventually(() => inbox.ids().has(after.id) && poison.length === 1);
      expect(poison[0]?.reason).toBeTypeOf('string');
      // Acknowledged: a new subscription sees neither again.
      await sub.close();
      const again = new Inbox();
      const seen: Poison[] = [];
      subs.push(
        await h.transport(b).subscribe({
          ...h.subscribeOptions,
          channel: ch,
          region: b,
          handler: async (events) => {
            again.events.push(...events);
          },
          onPoison: (p) => seen.push(p),
        }),
      );
      const marker = sampleEvent(a);
      await h.transport(a).publish(ch, [marker]);
      await eventually(() => again.ids().has(marker.id));
      expect(again.ids().has(after.id)).toBe(false);
      expect(seen).toEqual([]);
    });

    it('carries a new kind of envelope through the pipeline without the transport knowing it', async () => {
      const h = await setup();
      const [a, b] = h.regions;
      const ch = channel();
      const got: { greeting: string; from: string }[] = [];
      const pipeline = (region: string) =>
        new Pipeline({
          region,
          channel: ch,
          transport: h.transport(region),
          sealer: undefined,
          acceptUnsealed: false,
          deadLetters: undefined,
          now: Date.now,
          onError: () => {},
        });
      const sender = pipeline(a);
      const receiver = pipeline(b);
      receiver.register<{ greeting: string }>('greeting', {
        decode: (envelope) => JSON.parse(envelope.body) as { greeting: string },
        apply: async (items, envelopes) => {
          for (const [i, item] of items.entries()) {
            got.push({ greeting: item.greeting, from: (envelopes[i] as Envelope).origin });
          }
        },
      });
      subs.push(
        await receiver.subscribe({ source: h.subscribeOptions?.source ?? 'published', relayed: false }),
      );
      await sender.publish([
        {
          id: `${a}:hello-${Date.now()}`,
          origin: a,
          kind: 'greeting',
          time: Date.now(),
          body: '{"greeting":"안녕"}',
        },
      ]);
      await eventually(() => got.length === 1);
      expect(got).toEqual([{ greeting: '안녕', from: a }]);
      expect(receiver.stats.envelopes).toBe(1);
      expect(receiver.stats.lagMs[a]).toBeGreaterThanOrEqual(0);
    });
  });
}
