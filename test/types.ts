// Type tests, checked by `npm run typecheck` (part of npm test): a response, param or
// query field that changes type breaks the build here. Never run, only compiled.
import type { ActiveConversation, AgentView, ErrorResponse, OnlineStatus, Params, QueuedConversation, Querystring, Skill, Source } from '../schemas/index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
const expect = <T extends true>(): T => true as T

expect<Equal<Params, { streamId: string, agentId: string }>>()
expect<Equal<Querystring, { agentGroupId?: string[], agentId?: string, source?: 'chat' | 'call' }>>()
expect<Equal<Source, 'chat' | 'call'>>()
expect<Equal<OnlineStatus, 'available' | 'busy' | 'away' | 'offline'>>()
expect<Equal<Skill, { id: string, name: string }>>()

expect<Equal<AgentView['resolutionTime'], number | null>>()
expect<Equal<AgentView['firstResponseTime'], number | null>>()
expect<Equal<AgentView['responseTime'], number | null>>()
expect<Equal<AgentView['onlineStatus'], OnlineStatus>>()
expect<Equal<AgentView['active'], ActiveConversation[]>>()
expect<Equal<AgentView['queue'], QueuedConversation[]>>()
expect<Equal<keyof AgentView, 'resolutionTime' | 'firstResponseTime' | 'responseTime' | 'firstName' | 'lastName' | 'name' | 'profImage' | 'onlineStatus' | 'active' | 'queue'>>()

expect<Equal<ActiveConversation, {
  firstName: string
  lastName: string
  skills: Skill[]
  startTime: string
  conversationId: string
  source: Source
  profImage: string
  engagementTime: number
  waitTime: number
}>>()
expect<Equal<QueuedConversation, Omit<ActiveConversation, 'engagementTime'>>>()
expect<Equal<ErrorResponse, { statusCode: number, code: string, error: string, message: string }>>()

// @ts-expect-error: the queue has no engagementTime
export const noEngagement: QueuedConversation['engagementTime'] = 0
