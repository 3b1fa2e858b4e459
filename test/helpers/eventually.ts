/** Polls `check` until it returns true or `timeoutMs` passes (no server needed, unlike servers.ts). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, stepMs = 20) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}
