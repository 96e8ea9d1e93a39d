import { Type, type SchemaOptions } from '@sinclair/typebox'

/** Opaque ids of the vendor API: 1 to 64 characters of [A-Za-z0-9_-]. */
export const ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$'

/** An opaque id with its description and an example from the vendor page. */
export const Id = (description: string, example: string) =>
  Type.String({ pattern: ID_PATTERN, minLength: 1, maxLength: 64, description, examples: [example] })

/**
 * A string enumeration as JSON Schema `enum` (not TypeBox's `anyOf` of literals):
 * simpler for Ajv, fast-json-stringify and OpenAPI renderers alike.
 */
export const StringEnum = <const T extends readonly string[]>(values: T, options: SchemaOptions = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options })

export const SOURCES = ['chat', 'call'] as const
export type Source = (typeof SOURCES)[number]

export const ONLINE_STATUSES = ['available', 'busy', 'away', 'offline'] as const
export type OnlineStatus = (typeof ONLINE_STATUSES)[number]
