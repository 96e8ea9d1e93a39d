// npm run bench:tokens: what remembering verified tokens saves (the plugin gives
// fast-jwt `cache: VERIFIED_TOKENS_CACHED`, lib/index.ts). A wallboard sends the same token all
// day; this verifies one token over and over, without and with the cache, for
// each kind of key the plugin takes. Env: BENCH_VERIFICATIONS (5000).
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { createSigner, createVerifier } from 'fast-jwt'
import { VERIFIED_TOKENS_CACHED } from '../lib/options.js'

const VERIFICATIONS = Number(process.env.BENCH_VERIFICATIONS ?? 5000)
const pem = (key: KeyObject) => key.export({ type: key.type === 'public' ? 'spki' : 'pkcs8', format: 'pem' }).toString()
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
const ed = generateKeyPairSync('ed25519')
const secret = randomBytes(32).toString('hex')
const KEYS: Array<{ algorithm: 'HS256' | 'RS256' | 'ES256' | 'EdDSA', sign: string, verify: string }> = [
  { algorithm: 'HS256', sign: secret, verify: secret },
  { algorithm: 'RS256', sign: pem(rsa.privateKey), verify: pem(rsa.publicKey) },
  { algorithm: 'ES256', sign: pem(ec.privateKey), verify: pem(ec.publicKey) },
  { algorithm: 'EdDSA', sign: pem(ed.privateKey), verify: pem(ed.publicKey) }
]

/** Microseconds a verification of the same token, after a warm-up. */
function perVerification (verify: (token: string) => unknown, token: string): number {
  for (let i = 0; i < VERIFICATIONS / 10; i++) verify(token)
  const started = process.hrtime.bigint()
  for (let i = 0; i < VERIFICATIONS; i++) verify(token)
  return Number(process.hrtime.bigint() - started) / 1000 / VERIFICATIONS
}

console.log(`${VERIFICATIONS} verifications of one token, µs each:\n`)
console.log(`| algorithm | without cache | cache: ${VERIFIED_TOKENS_CACHED} |`)
console.log('|---|---|---|')
for (const key of KEYS) {
  const token = createSigner({ key: key.sign, algorithm: key.algorithm, expiresIn: 3600_000 })({ role: 'manager', streamIds: ['st-1'] })
  const options = { key: key.verify, algorithms: [key.algorithm], requiredClaims: ['exp'] }
  const uncached = perVerification(createVerifier(options), token)
  const cached = perVerification(createVerifier({ ...options, cache: VERIFIED_TOKENS_CACHED }), token)
  console.log(`| ${key.algorithm} | ${uncached.toFixed(1)} | ${cached.toFixed(1)} |`)
}
