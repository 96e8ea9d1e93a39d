import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import activeConversations, { type ActiveConversationsOptions, type JwtOptions } from '../../lib/index.js'
import { SECRET } from './tokens.js'

interface Teardown { teardown: (fn: () => unknown) => void }

/**
 * A gateway with the plugin at its root (or under `prefix`), after what
 * `before` registers (an instrumentation, say); closed at teardown.
 */
export async function gateway (
  t: Teardown,
  options: Omit<ActiveConversationsOptions, 'jwt'> & { jwt?: JwtOptions, prefix?: string },
  fastifyOptions: FastifyServerOptions = {},
  before?: (app: FastifyInstance) => Promise<void>
): Promise<FastifyInstance> {
  const app = Fastify(fastifyOptions)
  await before?.(app)
  await app.register(activeConversations, { jwt: { secret: SECRET }, ...options })
  await app.ready()
  t.teardown(() => app.close())
  return app
}

/** The route's URL for a stream and agent, with an optional query string. */
export function viewUrl (streamId: string, agentId: string, query = ''): string {
  return `/public/${streamId}/analytics/manager/agent/${agentId}/active-conversations${query === '' ? '' : `?${query}`}`
}
