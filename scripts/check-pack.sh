#!/usr/bin/env bash
# Checks the package as npm would publish it: packs the project (prepack builds it), installs the tarball
# into a scratch app that has only express, express-session and ioredis, then loads `geosession` and
# `geosession/redis-streams` from ESM (.mjs) and CommonJS (.cjs), builds a store on a lazy ioredis client
# (no server needed), runs the `geosession` bin's --help, and type-checks a TypeScript consumer with
# moduleResolution node16 (ESM and CJS).
# Runs from anywhere; leaves nothing behind; says which step failed and shows its output.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

work=$(mktemp -d "${TMPDIR:-/tmp}/geosession-check-pack.XXXXXX")
trap 'rm -rf "$work"' EXIT

step() { echo "check-pack: $*"; }
fail() {
  echo "check-pack: FAILED: $1" >&2
  if [ -n "${2:-}" ] && [ -s "$2" ]; then
    echo "---- output ----" >&2
    tail -n 60 "$2" >&2
    echo "----------------" >&2
  fi
  exit 1
}
# The version of a package installed in the project, so that the scratch app gets the same (from cache).
installed() { node -p "require('$root/node_modules/$1/package.json').version"; }

step "packing (npm pack runs prepack, which builds)"
npm pack --pack-destination "$work" >"$work/pack.log" 2>&1 || fail "npm pack failed" "$work/pack.log"
tarball=$(find "$work" -maxdepth 1 -name 'geosession-*.tgz' | head -n 1)
[ -n "$tarball" ] || fail "npm pack made no tarball" "$work/pack.log"

step "checking the tarball's contents"
tar -tzf "$tarball" >"$work/contents.txt"
for entry in index redis-streams amqp nats admin prometheus; do
  for ext in js cjs d.ts d.cts; do
    grep -qx "package/dist/$entry.$ext" "$work/contents.txt" ||
      fail "the tarball has no dist/$entry.$ext (was the package built before packing?)" "$work/contents.txt"
  done
done

step "installing it into a scratch app with express, express-session and ioredis"
app="$work/app"
mkdir "$app"
echo '{ "name": "scratch-app", "version": "1.0.0", "private": true }' >"$app/package.json"
(
  cd "$app"
  npm install --no-audit --no-fund --prefer-offline --loglevel=error \
    "express@$(installed express)" "express-session@$(installed express-session)" \
    "ioredis@$(installed ioredis)" "$tarball"
) >"$work/install.log" 2>&1 || fail "npm install of the tarball failed" "$work/install.log"

cat >"$app/check.mjs" <<'EOF'
import session from 'express-session';
import { ConfigError, GeoSessionStore } from 'geosession';
import { metricsText } from 'geosession/prometheus';
import { createRedisStreamsTransport } from 'geosession/redis-streams';
import { Redis } from 'ioredis';

const failed = [];
const check = (what, ok) => ok || failed.push(what);
check("geosession's GeoSessionStore is a class", typeof GeoSessionStore === 'function');
check("geosession/redis-streams' createRedisStreamsTransport is a function",
  typeof createRedisStreamsTransport === 'function');
const hk = new Redis({ lazyConnect: true });
const kr = new Redis({ lazyConnect: true });
const store = new GeoSessionStore({ region: 'hk', client: hk });
check('the store is an express-session Store', store instanceof session.Store);
check('store.genid() makes ids of its region', store.genid().startsWith('hk.'));
check('geosession/prometheus renders metrics without prom-client installed',
  metricsText(store).includes('# TYPE geosession_store_operations_total counter'));
try {
  createRedisStreamsTransport({ regions: { hk } });
  check('createRedisStreamsTransport refuses a single region', false);
} catch (error) {
  check('a transport ConfigError is the ConfigError of geosession', error instanceof ConfigError);
}
const transport = createRedisStreamsTransport({ regions: { hk, kr } });
check('the transport is built', transport.name === 'redis-streams');
await store.close();
await transport.close();
hk.disconnect();
kr.disconnect();
if (failed.length > 0) {
  console.error(failed.map((what) => `not true: ${what}`).join('\n'));
  process.exit(1);
}
EOF
sed -e "s#^import session from 'express-session';#const session = require('express-session');#" \
  -e "s#^import { ConfigError, GeoSessionStore } from 'geosession';#const { ConfigError, GeoSessionStore } = require('geosession');#" \
  -e "s#^import { createRedisStreamsTransport } from 'geosession/redis-streams';#const { createRedisStreamsTransport } = require('geosession/redis-streams');#" \
  -e "s#^import { metricsText } from 'geosession/prometheus';#const { metricsText } = require('geosession/prometheus');#" \
  -e "s#^import { Redis } from 'ioredis';#const { Redis } = require('ioredis');#" \
  "$app/check.mjs" | awk 'BEGIN { print "(async () => {" } { print } END { print "})();" }' >"$app/check.cjs"

for file in check.mjs check.cjs; do
  kind=$([ "$file" = check.mjs ] && echo ESM || echo CommonJS)
  step "loading geosession and geosession/redis-streams from $kind ($file)"
  (cd "$app" && node "$file") >"$work/$file.log" 2>&1 || fail "$kind: $file failed" "$work/$file.log"
  [ ! -s "$work/$file.log" ] || fail "$kind: $file printed something (expected nothing)" "$work/$file.log"
done

step "running the geosession bin from the installed package (geosession --help)"
(cd "$app" && ./node_modules/.bin/geosession --help) >"$work/bin.log" 2>&1 ||
  fail "the geosession bin failed" "$work/bin.log"
grep -q '^Usage: geosession' "$work/bin.log" || fail "geosession --help printed no usage" "$work/bin.log"

step "type-checking a TypeScript consumer (moduleResolution node16, ESM and CJS)"
for ext in mts cts; do
  cat >"$app/consumer.$ext" <<'EOF'
import { GeoSessionStore, type GeoSessionStoreOptions, type SessionData } from 'geosession';
import { createRedisStreamsTransport, type RedisStreamsTransportOptions } from 'geosession/redis-streams';
import { Redis } from 'ioredis';

const client = new Redis({ lazyConnect: true });
const options: GeoSessionStoreOptions = { region: 'hk', client };
const store: GeoSessionStore = new GeoSessionStore(options);
const transportOptions: RedisStreamsTransportOptions = { regions: { hk: client, kr: client } };
export const transport = createRedisStreamsTransport(transportOptions);
export const read: Promise<SessionData | null> = store.get('hk.x');
// @ts-expect-error: region is a string
export const wrong = new GeoSessionStore({ region: 1, client });
EOF
done
cat >"$app/tsconfig.json" <<EOF
{
  "compilerOptions": {
    "strict": true,
    "noEmit": true,
    "module": "node16",
    "moduleResolution": "node16",
    "target": "es2022",
    "types": ["node"],
    "typeRoots": ["$root/node_modules/@types"],
    "skipLibCheck": true
  },
  "files": ["consumer.mts", "consumer.cts"]
}
EOF
(cd "$app" && "$root/node_modules/.bin/tsc" -p tsconfig.json) >"$work/tsc.log" 2>&1 ||
  fail "the TypeScript consumer does not compile against the installed types" "$work/tsc.log"

step "ok: $(basename "$tarball") ships built code and types that load from ESM, CommonJS and TypeScript"
