import type { TSchema } from '@sinclair/typebox'
import { ActiveConversationsOptions } from '../../schemas/options.js'

/** The README's options table as the schema declares it: name, type, default, meaning. */
export function optionRows (schema: TSchema = ActiveConversationsOptions, prefix = ''): string[][] {
  return Object.entries(schema.properties as Record<string, TSchema>).flatMap(([name, option]) => {
    const row = [`\`${prefix}${name}\``, typeOf(option), defaultOf(option), option.description as string]
    // A required group of options (jwt) lists its members; an optional one is one row (rateLimit), and
    // then its members when it asks to (live: each has a default of its own).
    const required = (schema.required as string[] | undefined)?.includes(name) === true
    if (option.type !== 'object') return [row]
    if (required) return optionRows(option, `${name}.`)
    return option.readmeMembers === true ? [row, ...optionRows(option, `${name}.`)] : [row]
  })
}

function typeOf (schema: TSchema): string {
  if (schema.type === 'integer') return `\`integer\` ${schema.minimum as number}–${schema.maximum as number}`
  if ((schema.anyOf as TSchema[] | undefined)?.every((item) => item.const !== undefined) === true) return '`string`' // one of a list (jwt.algorithms)
  if (schema.anyOf !== undefined) return (schema.anyOf as TSchema[]).map(typeOf).join(' \\| ')
  if (schema.type === 'array') return `${typeOf(schema.items as TSchema).replace(/`$/, '[]`')}`
  if (schema.type === 'Uint8Array') return '`Buffer`'
  if (schema.type === 'object') return `\`{ ${Object.keys(schema.properties as object).map((key) => ((schema.required ?? []) as string[]).includes(key) ? key : `${key}?`).join(', ')} }\``
  if (schema.type === 'string') return '`string`'
  if (schema.type === 'boolean') return '`boolean`'
  return '`pg.Pool`'
}

function defaultOf (schema: TSchema): string {
  if (schema.readmeDefault !== undefined) return schema.readmeDefault as string
  return schema.default === undefined ? '' : `\`${String(schema.default)}\``
}
