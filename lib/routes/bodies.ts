import { Type } from '@sinclair/typebox'
import { AgentView, FloorAgent } from '../../schemas/response.js'
import type { AgentViewText } from '../sql/views.js'

/*
 * The 200 bodies, from the schemas and the statement's JSON text. The agent's
 * fields are serialized by Fastify from these head schemas (the response
 * schemas without their last two fields, the lists); the lists arrive as JSON
 * text that the statement built in the schema's order, and are spliced in as
 * they are. Parsing them only to serialize them again was most of the server's
 * work for a busy view (BENCHMARKS.md, step 14). The tests validate the bodies
 * against the response schemas.
 */

/** AgentView without `active` and `queue`, its last two fields. */
export const AgentViewHead = Type.Omit(AgentView, ['active', 'queue'])
/** FloorAgent without `active` and `queue`, its last two fields. */
export const FloorAgentHead = Type.Omit(FloorAgent, ['active', 'queue'])

/** A head serializer, as Fastify compiles it (reply.compileSerializationSchema). */
export type Serialize = (value: { [key: string]: unknown }) => string

/** `{…head fields…,"active":[…],"queue":[…]}` */
export function withLists (serializeHead: Serialize, view: AgentViewText): string {
  return `${serializeHead(view).slice(0, -1)},"active":${view.active},"queue":${view.queue}}`
}

/**
 * The floor's body, `{"agents":[…],"nextCursor":…}`, written into one Buffer:
 * joining a page's strings (half a megabyte for 100 busy agents) cost V8 about
 * ten times more than writing their bytes (BENCHMARKS.md, step 16).
 */
export function floorBody (serializeHead: Serialize, agents: AgentViewText[], nextCursor: string | null): Buffer {
  const pieces = ['{"agents":[']
  agents.forEach((agent, i) => {
    pieces.push(i === 0 ? '' : ',', serializeHead(agent).slice(0, -1), ',"active":', agent.active, ',"queue":', agent.queue, '}')
  })
  pieces.push(`],"nextCursor":${JSON.stringify(nextCursor)}}`)
  const body = Buffer.allocUnsafe(pieces.reduce((size, piece) => size + Buffer.byteLength(piece), 0))
  pieces.reduce((offset, piece) => offset + body.write(piece, offset), 0)
  return body
}
