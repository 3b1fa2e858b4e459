import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../../src/replication/events.js';
import type { ReplicationTransport, Subscription } from '../../src/transports/transport.js';
import { eventually } from '../helpers/servers.js';

/** What a transport's test file provides to the shared conformance suite. */
export interface ConformanceHarness {
  /** Three region ids the transport was set up for. */
  readonly regions: readonly [string, string, string];
  /** The transport as a process of `region` would hold it (one shared instance is fine). */
  transport(region: string): ReplicationTransport;
  /** Releases everything the harness created (the suite closes the transports first). */
  cleanup(): Promise<void>;
}

let seq = 0;
/** A set event made in `origin`, unique within the run. */
export function sampleEvent(origin: string, sid = `${origin}.s${seq}`): ChangeEvent {
  seq++;
  const ms = String(Date.now()).padStart(13, '0');
  return {
    id: `${origin}:${Date.now()}-${seq}`,
    origin,
    sid,
    op: 'set',
    version: `${ms}.${String(seq % 10000).padStart(4, '0')}.${origin}`,
    expiresAt: Date.now() + 60_000,
    cookieExpires: Date.now() + 60_000,
    fingerprint: `fp${seq}`,
    data: JSON.stringify({ cookie: { originalMaxAge: 60_000 }, n: seq }),
  };
}

/** Collects what a region receives. */
class Inbox {
  readonly events: ChangeEvent[] = [];
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
      await h.transport(a).publish(ch, fromA);
      await h.transport(b).publish(ch, fromB);
      const want = (events: ChangeEvent[]) => events.map((e) => e.id);
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
  });
}
