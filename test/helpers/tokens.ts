import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto'
import { createSigner } from 'fast-jwt'

/** The HMAC secret the test gateways verify with. */
export const SECRET = randomBytes(32).toString('hex')

export const rsa = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' }
})
export const ec = generateKeyPairSync('ec', {
  namedCurve: 'P-256',
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' }
})

export interface SignOptions {
  key?: string
  algorithm?: 'HS256' | 'HS384' | 'RS256' | 'ES256'
  /** Seconds until expiry; default one hour; null: no exp claim at all. */
  expiresIn?: number | null
  iss?: string
  aud?: string
  notBefore?: number
}

/** A real token, signed with a real key (default: SECRET, HS256, exp in one hour). */
export function sign (claims: Record<string, unknown>, options: SignOptions = {}): string {
  const signer = createSigner({
    key: options.key ?? SECRET,
    algorithm: options.algorithm ?? 'HS256',
    ...(options.expiresIn === null ? {} : { expiresIn: (options.expiresIn ?? 3600) * 1000 }),
    ...(options.notBefore === undefined ? {} : { notBefore: options.notBefore * 1000 }),
    ...(options.iss === undefined ? {} : { iss: options.iss }),
    ...(options.aud === undefined ? {} : { aud: options.aud })
  })
  return signer(claims)
}

/** A manager of the given streams (and, if given, only of these groups). */
export function managerToken (streamIds: string[], agentGroupIds?: string[]): string {
  return sign({ sub: 'manager-1', role: 'manager', streamIds, ...(agentGroupIds ? { agentGroupIds } : {}) })
}

/** A token built by hand, HS256 over exactly the header and payload given (for claims a signer refuses). */
export function signRaw (header: object, payload: unknown, key = SECRET): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const signingInput = `${encode(header)}.${encode(payload)}`
  return `${signingInput}.${createHmac('sha256', key).update(signingInput).digest('base64url')}`
}
