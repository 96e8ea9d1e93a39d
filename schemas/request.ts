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

export const Querystring = Type.Object(
  {
    agentGroupId: Type.Optional(
      Type.Array(Id('Agent group id.', 'ag-1234'), {
        maxItems: MAX_AGENT_GROUP_IDS,
        description:
          'Narrows `active` and `queue` to conversations of these agent groups. Repeat the parameter ' +
          '(`?agentGroupId=a&agentGroupId=b`) or separate the ids with commas (`?agentGroupId=a,b`).'
      })
    ),
    agentId: Type.Optional(Id("Accepted as on the vendor page; when given it must equal the path's agentId.", 'a-1234')),
    source: Type.Optional(StringEnum(SOURCES, { description: 'Narrows `active` and `queue` to one source; absent means both.' }))
  },
  // Unknown parameters are dropped (Fastify's default Ajv has removeAdditional), not rejected.
  { additionalProperties: false }
)
export type Querystring = Static<typeof Querystring>
