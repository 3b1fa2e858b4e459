/**
 * PASERK k4 identifiers as `paseto` capabilities, for applications composing their own protocol objects
 * (`new LocalProtocol(K4LocalKeyIDFactory)`, `new PublicProtocol(K4PublicKeyIDFactory, ...)`): the
 * `paseto` package leaves k4 ids to its extension API because they need BLAKE2b-264.
 */
import { LocalKeyID, PublicKeyID, SecretKeyID } from 'paseto';
import { k4LocalId, k4PublicId, k4SecretId } from './paserk.js';

/** `paseto` capability: `KeyID` (k4.lid) of a k4 local key's PASERK. */
export const K4LocalKeyIDFactory: ReturnType<typeof LocalKeyID<4>> = /* @__PURE__ */ LocalKeyID<4>({
  version: 4,
  run: async (paserk) => k4LocalId(paserk),
});

/** `paseto` capability: `PublicKeyID` (k4.pid) of a k4.public PASERK. */
export const K4PublicKeyIDFactory: ReturnType<typeof PublicKeyID<4>> = /* @__PURE__ */ PublicKeyID<4>({
  version: 4,
  run: async (paserk) => k4PublicId(paserk),
});

/** `paseto` capability: `SecretKeyID` (k4.sid) of a k4 secret key's PASERK. */
export const K4SecretKeyIDFactory: ReturnType<typeof SecretKeyID<4>> = /* @__PURE__ */ SecretKeyID<4>({
  version: 4,
  run: async (paserk) => k4SecretId(paserk),
});
