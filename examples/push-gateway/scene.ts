/**
 * The push gateway's scene, used by index.ts and by `npm run demo`: alice is logged in through hk (a
 * laptop with two tabs) and through kr (a phone); her three sockets are open on pods hk-a and kr-a; the
 * sender in kr pushes her a message with one call per pod; then she logs out everywhere from the phone,
 * in kr, and every socket (the laptop's in hk too) is closed at once.
 */
import type { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import type { GeoSessionStore, ReplicationTransport, Sealer } from '../../src/index.js';
import { type Connections, openConnections } from './integrations.js';
import { type Pod, startPod } from './pod.js';
import { createSender, type PushResult } from './sender.js';

/** One region of the scene. */
export interface SceneRegion {
  store: GeoSessionStore;
  client: Redis;
  /** The transport the region's registry replicates through (the store's own will do). */
  transport: ReplicationTransport;
  /** Seals what the registry replicates (the store's sealer will do); none: unsealed. */
  sealer?: Sealer;
}

/** What the scene saw, for its checks and tests. */
export interface SceneResult {
  /** HTTP status of an upgrade without a session cookie (401: refused). */
  anonymous: number;
  /** Sockets opened, by region. */
  opened: Record<string, number>;
  push: PushResult;
  /** Devices that received the push. */
  received: string[];
  /** Sessions the logout everywhere ended. */
  ended: number;
  /** Close code of each device's socket after the logout everywhere. */
  closed: Record<string, number | undefined>;
  /** Pods listed for alice once her sockets are gone. */
  podsAfter: number;
  /** Whether everything the scene shows happened. */
  ok: boolean;
}

/** Options of {@link runScene}. */
export interface SceneOptions {
  hk: SceneRegion;
  kr: SceneRegion;
  log: (line: string) => void;
  /** Registers every opened thing to close at the end (newest first). */
  onClose: (what: string, close: () => Promise<void>) => void;
  /** How long to wait for each step (replication, sockets). Default 10000 ms. */
  timeoutMs?: number;
}

const SECRETS = ['push-gateway example secret, use a real one'];

async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

interface Device {
  name: string;
  ws: WebSocket;
  messages: unknown[];
  code: number | undefined;
}

function openDevice(name: string, pod: Pod, cookie: string): Device {
  const ws = new WebSocket(`${pod.url.replace('http', 'ws')}/live`, { headers: { cookie } });
  const device: Device = { name, ws, messages: [], code: undefined };
  ws.on('message', (data) => device.messages.push(JSON.parse(String(data))));
  ws.on('close', (code) => {
    device.code = code;
  });
  ws.on('error', () => {});
  return device;
}

/** The status an upgrade without any cookie gets (101 would be a socket opened). */
function anonymousUpgrade(pod: Pod): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${pod.url.replace('http', 'ws')}/live`);
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      resolve(101);
      ws.terminate();
    });
    ws.on('error', () => resolve(0));
  });
}

async function login(pod: Pod, user: string): Promise<string> {
  const res = await fetch(`${pod.url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  const cookie = res.headers.get('set-cookie')?.split(';')[0];
  await res.arrayBuffer();
  if (!res.ok || !cookie) throw new Error(`login on ${pod.pod} answered ${res.status}`);
  return cookie;
}

/** Runs the scene on two regions whose stores replicate through `transport`. */
export async function runScene(options: SceneOptions): Promise<SceneResult> {
  const { log } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const regions = { hk: options.hk, kr: options.kr };
  const pods: Record<string, Pod> = {};
  const registries: Record<string, Connections> = {};
  for (const [region, { store, client, transport, sealer }] of Object.entries(regions)) {
    const pod = `${region}-a`;
    const connections = openConnections({
      client,
      region,
      pod,
      leaseMs: 10_000,
      prefix: store.prefix,
      transport,
      sealer,
      log,
    });
    registries[region] = connections;
    pods[pod] = await startPod({ store, pod, connections, secrets: SECRETS, log });
    options.onClose(`stopping pod ${pod}`, () => (pods[pod] as Pod).close());
  }
  const hkPod = pods['hk-a'] as Pod;
  const krPod = pods['kr-a'] as Pod;

  const anonymous = await anonymousUpgrade(hkPod);
  log(
    `an upgrade without a session cookie: ${anonymous === 401 ? 'refused (401)' : `UNEXPECTED ${anonymous}`}`,
  );
  log('alice logs in through hk (her laptop) and through kr (her phone)');
  const laptop = await login(hkPod, 'alice');
  const phone = await login(krPod, 'alice');
  const devices = [
    openDevice('laptop tab 1', hkPod, laptop),
    openDevice('laptop tab 2', hkPod, laptop),
    openDevice('phone', krPod, phone),
  ];
  options.onClose('closing the devices', async () => {
    for (const d of devices) d.ws.terminate();
  });
  await waitFor(() => devices.every((d) => d.messages.length > 0 || d.code !== undefined), timeoutMs);
  const opened = { hk: hkPod.open(), kr: krPod.open() };
  log(`sockets open: ${opened.hk} in hk, ${opened.kr} in kr`);

  // The sender runs in kr: it finds the hk pod through the registry, with no question to any pod.
  const sender = createSender({
    region: 'kr',
    connections: registries.kr as Connections,
    podUrl: (pod) => pods[pod]?.url,
    log,
  });
  // The registry replicates: wait until the kr sender sees all three connections.
  const deadline = Date.now() + timeoutMs;
  let push = await sender.push('alice', 'your order has shipped');
  while (push.delivered < devices.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    push = await sender.push('alice', 'your order has shipped');
  }
  const pushed = (d: Device) => d.messages.some((m) => (m as { push?: string }).push !== undefined);
  await waitFor(() => devices.every(pushed), timeoutMs);
  const received = devices.filter(pushed).map((d) => d.name);
  for (const name of received) log(`${name} received the push`);

  log('alice logs out everywhere from her phone, in kr');
  const res = await fetch(`${krPod.url}/logout-everywhere`, { method: 'POST', headers: { cookie: phone } });
  const { ended = 0 } = (await res.json()) as { ended?: number };
  log(`kr ended ${ended} sessions`);
  await waitFor(() => devices.every((d) => d.code !== undefined), timeoutMs);
  const closed: Record<string, number | undefined> = {};
  for (const d of devices) {
    closed[d.name] = d.code;
    log(`${d.name}: ${d.code === undefined ? 'STILL OPEN' : `closed (${d.code})`}`);
  }
  await waitFor(() => hkPod.open() + krPod.open() === 0, timeoutMs);
  let podsAfter = (await (registries.kr as Connections).podsOf('alice')).length;
  const emptied = Date.now() + timeoutMs;
  while (podsAfter > 0 && Date.now() < emptied) {
    await new Promise((r) => setTimeout(r, 50));
    podsAfter = (await (registries.kr as Connections).podsOf('alice')).length;
  }
  log(`podsOf(alice) after the logout: ${podsAfter === 0 ? 'none' : `${podsAfter} pods`}`);

  const ok =
    anonymous === 401 &&
    opened.hk === 2 &&
    opened.kr === 1 &&
    push.calls.length === 2 &&
    received.length === devices.length &&
    ended === 2 &&
    devices.every((d) => d.code === 1008) &&
    podsAfter === 0;
  return { anonymous, opened, push, received, ended, closed, podsAfter, ok };
}
