import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import { PROJECT_ROOT } from './root.js'

const PAGE = readFileSync(`${PROJECT_ROOT}examples/wallboard.html`, 'utf8')

const escapeAttribute = (value: string): string => value.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;')

/**
 * GET /wallboard: the demo stream's queues and floor for a manager's screen,
 * one HTML file with no build step. The demo writes its token into the page (a
 * real gateway would hand the page its user's token); the page sends it in the
 * `auth` header of the queue metrics and floor streams' fetches.
 */
export function registerWallboard (gateway: FastifyInstance, { token, streamId, eventsPath, metricsPath }: { token: string, streamId: string, eventsPath: string, metricsPath: string }): void {
  const page = PAGE
    .replace('<meta charset="utf-8">', `<meta charset="utf-8">
<meta name="wallboard-token" content="${escapeAttribute(token)}">
<meta name="wallboard-events" content="${escapeAttribute(eventsPath)}">
<meta name="wallboard-metrics" content="${escapeAttribute(metricsPath)}">
<meta name="wallboard-stream" content="${escapeAttribute(streamId)}">`)
  gateway.get('/wallboard', { schema: { hide: true } }, async (_request, reply) => {
    return await reply.header('cache-control', 'no-store').type('text/html; charset=utf-8').send(page)
  })
}
