import { createHash } from 'node:crypto'

/**
 * A prepared statement's name: pg prepares it once per connection. The hash
 * makes a changed text a new name, so two versions of the plugin can share a pool.
 * With `preparedStatements: false` (a transaction-mode pooler hands each
 * statement any server connection) the statements go unnamed, planned on each call.
 */
export function statementName (what: string, sql: string): string {
  return `fastify-active-conversations/${what}/${createHash('sha256').update(sql).digest('hex').slice(0, 12)}`
}
