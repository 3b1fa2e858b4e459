/** Claims the `paseto` bench's issuer signs and its app checks. */
export const BENCH_ISSUER = 'https://auth.bench';
export const BENCH_AUDIENCE = 'bench';
