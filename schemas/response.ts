import { Type, type Static } from '@sinclair/typebox'
import { Id, ONLINE_STATUSES, SOURCES, StringEnum } from './common.js'
import { VENDOR_SAMPLE_RESPONSE } from './example.js'

const NO_AVATAR = "Image URL, or the string `no-avatar` when there is none."
const seconds = (description: string) => Type.Integer({ minimum: 0, description: `${description} Whole seconds.` })
const nullableSeconds = (description: string) =>
  Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
    description: `${description} Whole seconds; null when no conversation in the metrics window qualifies.`
  })

export const Skill = Type.Object(
  {
    id: Type.String({ description: 'Skill id.', examples: ['s-21223123'] }),
    name: Type.String({ description: 'Skill name.', examples: ['Sales'] })
  },
  { $id: 'ActiveConversationsSkill', additionalProperties: false, description: 'A skill a conversation needs.' }
)
export type Skill = Static<typeof Skill>

/** The fields shared by a conversation being handled and one waiting in the queue. */
const conversationFields = {
  firstName: Type.String({ description: "Customer's first name." }),
  lastName: Type.String({ description: "Customer's last name." }),
  skills: Type.Array(Type.Ref(Skill), { description: 'The skills the conversation needs.' }),
  startTime: Type.String({
    format: 'date-time',
    description: 'When the conversation started: ISO 8601, UTC, milliseconds.',
    examples: ['2021-04-01T05:45:00.803Z']
  }),
  conversationId: Type.String({ description: 'Conversation id.', examples: ['c-1233'] }),
  source: StringEnum(SOURCES, { description: 'chat or call.' }),
  profImage: Type.String({ description: `Customer's image. ${NO_AVATAR}` })
}

export const ActiveConversation = Type.Object(
  {
    ...conversationFields,
    engagementTime: seconds('Time since the agent accepted the conversation.'),
    waitTime: seconds('Time the conversation waited in the queue before the agent accepted it.')
  },
  { additionalProperties: false, description: 'A conversation the agent is handling now.' }
)
export type ActiveConversation = Static<typeof ActiveConversation>

export const QueuedConversation = Type.Object(
  {
    ...conversationFields,
    waitTime: seconds('Time the conversation has been waiting in the queue so far.')
  },
  { additionalProperties: false, description: 'A waiting conversation this agent could take.' }
)
export type QueuedConversation = Static<typeof QueuedConversation>

export const AgentView = Type.Object(
  {
    resolutionTime: nullableSeconds('Mean time from acceptance to close, over the closed ones of those conversations.'),
    firstResponseTime: nullableSeconds("Mean time from acceptance to the agent's first response, over those answered."),
    responseTime: nullableSeconds('Mean time the agent took to answer a customer message.'),
    firstName: Type.String({ description: "Agent's first name." }),
    lastName: Type.String({ description: "Agent's last name." }),
    name: Type.String({ description: 'First and last name joined by one space.' }),
    profImage: Type.String({ description: `Agent's image. ${NO_AVATAR}` }),
    onlineStatus: StringEnum(ONLINE_STATUSES, { description: "Agent's presence." }),
    active: Type.Array(ActiveConversation, { description: 'Conversations the agent is handling now, oldest first.' }),
    queue: Type.Array(QueuedConversation, {
      description: 'Queued conversations the agent could take, longest waiting first.'
    })
  },
  {
    additionalProperties: false,
    description:
      "A manager's live view of one agent. The three metrics are averaged over the conversations the agent " +
      'accepted inside the metrics window (by default the last 24 hours).',
    examples: [VENDOR_SAMPLE_RESPONSE]
  }
)
export type AgentView = Static<typeof AgentView>

/** One agent of the floor: its id, then exactly the agent route's body for it. */
export const FloorAgent = Type.Object(
  {
    agentId: Id('The agent.', 'a-1234'),
    ...AgentView.properties
  },
  { additionalProperties: false, description: "One agent on the floor: the agent route's answer for it, with its id first." }
)
export type FloorAgent = Static<typeof FloorAgent>

export const Floor = Type.Object(
  {
    agents: Type.Array(FloorAgent, { description: 'The page\'s agents, in ascending `agentId` (byte order).' }),
    nextCursor: Type.Union([Type.String(), Type.Null()], {
      description: 'Pass it as `cursor` for the next page; null on the last page.',
      examples: ['YS0xMjM0']
    })
  },
  {
    additionalProperties: false,
    description: "A manager's floor: the agents of one or more groups (or all the token may see), each as the agent route answers it.",
    examples: [{ agents: [{ agentId: 'a-1234', ...VENDOR_SAMPLE_RESPONSE }], nextCursor: null }]
  }
)
export type Floor = Static<typeof Floor>

const count = (description: string) => Type.Integer({ minimum: 0, description })
const nullableAverage = (description: string) =>
  Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: `${description} Whole seconds, rounded half up; null when none qualifies.` })

/** The figures of a queue: what waits and is handled now, and the metrics window's cohort. */
const queueFigures = {
  waiting: count('Conversations with status `queued` now.'),
  longestWaitTime: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
    description: 'Seconds since the longest waiting of them was queued, floored; null when none waits.'
  }),
  active: count('Conversations with status `active` now.')
}
const cohortFigures = {
  offered: count('Conversations queued inside the metrics window (rolling, up to now), whatever their status: the cohort.'),
  answered: count('Of the cohort, those accepted by an agent.'),
  abandoned: count('Of the cohort, those closed without being accepted.'),
  averageSpeedOfAnswer: nullableAverage('Mean time from queued to accepted, over `answered`.'),
  serviceLevel: Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()], {
    description: 'Answered within `serviceLevelSeconds` of being queued, divided by `answered + abandoned`: from 0 to 1, 4 decimals; null when both are 0.',
    examples: [0.8667]
  }),
  averageHandleTime: nullableAverage('Mean time from accepted to closed, over the cohort\'s answered and closed.')
}

export const AgentCounts = Type.Object(
  {
    available: count('Members whose `onlineStatus` is `available`.'),
    busy: count('Members whose `onlineStatus` is `busy`.'),
    away: count('Members whose `onlineStatus` is `away`.'),
    offline: count('Members whose `onlineStatus` is `offline`.')
  },
  { additionalProperties: false, description: 'Agents by presence, each counted once.' }
)
export type AgentCounts = Static<typeof AgentCounts>

export const GroupFigures = Type.Object(
  {
    agentGroupId: Id('The group.', 'ag-1234'),
    name: Type.String({ description: 'The group\'s name.', examples: ['Sales'] }),
    ...queueFigures,
    agents: AgentCounts,
    ...cohortFigures
  },
  { additionalProperties: false, description: 'One group\'s queue: its conversations and its members.' }
)
export type GroupFigures = Static<typeof GroupFigures>

export const UngroupedFigures = Type.Object(
  { ...queueFigures, ...cohortFigures },
  { additionalProperties: false, description: 'The conversations routed to no group, which any agent may take.' }
)
export type UngroupedFigures = Static<typeof UngroupedFigures>

export const TotalFigures = Type.Object(
  { ...queueFigures, agents: AgentCounts, ...cohortFigures },
  {
    additionalProperties: false,
    description: 'Everything in `groups` and `ungrouped` together, each conversation and each agent counted once (an agent in two groups is one agent).'
  }
)
export type TotalFigures = Static<typeof TotalFigures>

const EXAMPLE_COHORT = { offered: 42, answered: 36, abandoned: 4, averageSpeedOfAnswer: 14, serviceLevel: 0.775, averageHandleTime: 312 }

export const GroupMetrics = Type.Object(
  {
    groups: Type.Array(GroupFigures, { description: 'The groups, in ascending `agentGroupId` (byte order).' }),
    ungrouped: Type.Union([UngroupedFigures, Type.Null()], {
      description: 'The ungrouped queue: for a manager of the whole stream asking for no `agentGroupId`; null otherwise.'
    }),
    totals: TotalFigures
  },
  {
    additionalProperties: false,
    description: 'A wallboard\'s queue figures: per group, for the ungrouped queue, and in total. Durations use the database clock, one instant for the whole answer.',
    examples: [{
      groups: [{
        agentGroupId: 'ag-1234',
        name: 'Sales',
        waiting: 3,
        longestWaitTime: 47,
        active: 5,
        agents: { available: 2, busy: 5, away: 1, offline: 4 },
        ...EXAMPLE_COHORT
      }],
      ungrouped: { waiting: 1, longestWaitTime: 12, active: 0, offered: 2, answered: 1, abandoned: 0, averageSpeedOfAnswer: 8, serviceLevel: 1, averageHandleTime: null },
      totals: {
        waiting: 4,
        longestWaitTime: 47,
        active: 5,
        agents: { available: 2, busy: 5, away: 1, offline: 4 },
        offered: 44,
        answered: 37,
        abandoned: 4,
        averageSpeedOfAnswer: 14,
        serviceLevel: 0.7805,
        averageHandleTime: 312
      }
    }]
  }
)
export type GroupMetrics = Static<typeof GroupMetrics>
