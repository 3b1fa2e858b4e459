/**
 * Runs examples/websocket-auth as written (tsx, on the machine's Redis with a private key prefix) and
 * drives it over HTTP: an upgrade without a session is refused, one with the login cookie is accepted and
 * greeted, a logout closes the open socket, and the old cookie no longer upgrades.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieJar } from '../helpers/http.js';
import { dropKeys, eventually, freePort, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

interface Upgrade {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  socket?: Socket;
  /** Bytes the server sent after its 101 response. */
  received: Buffer[];
  closed: boolean;
}

/** Asks for a WebSocket upgrade on /live, with a cookie header or none. */
function upgrade(port: number, key: string, cookie?: string): Promise<Upgrade> {
  return new Promise((resolve, reject) => {
    const req = request({
      port,
      host: '127.0.0.1',
      path: '/live',
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': key,
        'sec-websocket-version': '13',
        ...(cookie === undefined ? {} : { cookie }),
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, received: [], closed: true });
    });
    req.on('upgrade', (res, socket, head) => {
      const result: Upgrade = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        socket,
        received: [head],
        closed: false,
      };
      socket.on('data', (chunk: Buffer) => result.received.push(chunk));
      socket.on('close', () => {
        result.closed = true;
      });
      resolve(result);
    });
    req.end();
  });
}

/** Unmasked frames of under 126 bytes, as the example sends them: [opcode, payload]. */
function frames(bytes: Buffer): Array<[number, Buffer]> {
  const out: Array<[number, Buffer]> = [];
  let at = 0;
  while (at + 2 <= bytes.length) {
    const length = (bytes[at + 1] as number) & 0x7f;
    out.push([(bytes[at] as number) & 0x0f, bytes.subarray(at + 2, at + 2 + length)]);
    at += 2 + length;
  }
  return out;
}

describe.skipIf(!hasRedis)('examples/websocket-auth', () => {
  const prefix = uniquePrefix('ws-example');
  const redis = hasRedis ? sharedRedis() : undefined;
  let child: ChildProcess;
  let output = '';
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    child = spawn('node_modules/.bin/tsx', ['examples/websocket-auth/index.ts'], {
      env: { ...process.env, PORT: String(port), SESSION_PREFIX: prefix, RECHECK_MS: '100' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    await eventually(() => output.includes('listening on'), 30_000);
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    if (redis) {
      await dropKeys(redis, prefix);
      await redis.quit();
    }
  });

  it('authenticates upgrades from the session cookie and ends them at logout', async () => {
    const base = `http://127.0.0.1:${port}`;
    const key = randomBytes(16).toString('base64');

    expect((await upgrade(port, key)).status).toBe(401);
    expect((await upgrade(port, key, 'connect.sid=s%3Anot.signed')).status).toBe(401);

    const jar = new CookieJar();
    const login = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'alice' }),
    });
    expect(login.status).toBe(200);
    jar.absorb(login);
    const cookie = jar.header();

    const opened = await upgrade(port, key, `theme=dark; ${cookie}`);
    expect(opened.status).toBe(101);
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    expect(opened.headers['sec-websocket-accept']).toBe(accept);
    await eventually(() => frames(Buffer.concat(opened.received)).length > 0);
    const [opcode, hello] = frames(Buffer.concat(opened.received))[0] as [number, Buffer];
    expect(opcode).toBe(0x1);
    expect(JSON.parse(hello.toString())).toEqual({ hello: 'alice', region: 'hk' });

    const logout = await fetch(`${base}/logout`, { method: 'POST', headers: { cookie } });
    expect(logout.status).toBe(200);
    // The open socket notices the logout at its next recheck: a close frame 1008, then the end.
    await eventually(() => opened.closed);
    const close = frames(Buffer.concat(opened.received)).find(([op]) => op === 0x8);
    expect(close?.[1].readUInt16BE(0)).toBe(1008);
    expect(close?.[1].subarray(2).toString()).toBe('logged out');

    expect((await upgrade(port, key, cookie)).status).toBe(401);
  });

  it('shuts down on SIGTERM with sockets still open', async () => {
    const jar = new CookieJar();
    const login = await fetch(`http://127.0.0.1:${port}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'bob' }),
    });
    jar.absorb(login);
    const opened = await upgrade(port, randomBytes(16).toString('base64'), jar.header());
    expect(opened.status).toBe(101);

    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(output).toContain('bye');
    await eventually(() => opened.closed);
  });
});
