import { Type, type Static } from '@sinclair/typebox'
import { Id, SOURCES, StringEnum } from './common.js'

/** At most this many `agentGroupId` values in one request. */
export const MAX_AGENT_GROUP_IDS = 50

export const Params = Type.Object(
  {
    streamId: Id('Stream (tenant) id.', 'st-606c43de5e00ca5f4e27e38a'),
    agentId: Id('The agent to look at.', 'a-1234')
  },
  { additionalProperties: false }
)
export type Params = Static<typeof Params>

/** `agentGroupId`, repeated or comma-separated (the route's preValidation splits the commas). */
const agentGroupIds = (description: string) => Type.Optional(
  Type.Array(Id('Agent group id.', 'ag-1234'), {
    maxItems: MAX_AGENT_GROUP_IDS,
    description: `${description} Repeat the parameter (\`?agentGroupId=a&agentGroupId=b\`) or separate the ids with commas (\`?agentGroupId=a,b\`).`
  })
)
const source = Type.Optional(StringEnum(SOURCES, { description: 'Narrows `active` and `queue` to one source; absent means both.' }))

export const Querystring = Type.Object(
  {
    agentGroupId: agentGroupIds('Narrows `active` and `queue` to conversations of these agent groups.'),
    agentId: Type.Optional(Id("Accepted as on the vendor page; when given it must equal the path's agentId.", 'a-1234')),
    source
  },
  // Unknown parameters are dropped (Fastify's default Ajv has removeAdditional), not rejected.
  { additionalProperties: false }
)
export type Querystring = Static<typeof Querystring>

/** At most this many agents on one page of the floor. */
export const MAX_FLOOR_LIMIT = 500
/** What a cursor looks like on the wire: base64url, no padding. */
export const CURSOR_PATTERN = '^[A-Za-z0-9_-]{1,200}$'

export const FloorParams = Type.Object(
  { streamId: Id('Stream (tenant) id.', 'st-606c43de5e00ca5f4e27e38a') },
  { additionalProperties: false }
)
export type FloorParams = Static<typeof FloorParams>

export const FloorQuerystring = Type.Object(
  {
    agentGroupId: agentGroupIds(
      'The floor: the agents who are members of at least one of these groups (absent: every agent the token may see); ' +
      'also narrows each agent\'s `active` and `queue` to conversations of these groups, as on the agent route.'
    ),
    source,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_FLOOR_LIMIT, default: 100, description: 'Most agents on this page.', examples: [100] })),
    cursor: Type.Optional(Type.String({
      pattern: CURSOR_PATTERN,
      description: "Where this page starts: the previous page's `nextCursor`, as given (opaque).",
      examples: ['YS0xMjM0']
    }))
  },
  { additionalProperties: false }
)
export type FloorQuerystring = Static<typeof FloorQuerystring>

/** The floor stream's query: the floor route's, whole (no `limit`, no `cursor`). */
export const FloorStreamQuerystring = Type.Omit(FloorQuerystring, ['limit', 'cursor'], { additionalProperties: false })
export type FloorStreamQuerystring = Static<typeof FloorStreamQuerystring>

export const GroupMetricsQuerystring = Type.Object(
  {
    agentGroupId: agentGroupIds(
      'The groups to report (unknown ones are left out); absent: every group of the stream, or the token\'s `agentGroupIds` for a group-scoped manager.'
    ),
    source: Type.Optional(StringEnum(SOURCES, { description: 'Narrows every conversation figure to one source; the agent counts are not narrowed. Absent means both.' })),
    serviceLevelSeconds: Type.Optional(Type.Integer({
      minimum: 1,
      maximum: 3600,
      default: 20,
      description: 'The service level\'s target: a conversation answered within this many seconds of being queued counts as answered in time.',
      examples: [20]
    }))
  },
  { additionalProperties: false }
)
export type GroupMetricsQuerystring = Static<typeof GroupMetricsQuerystring>

/** At most this many groups in one metrics answer (an unrestricted manager's whole stream). */
export const MAX_METRICS_GROUPS = 500
