import { existsSync, readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import pg from 'pg'
import Fastify from 'fastify'
import activeConversations, { securitySchemes } from '../lib/index.js'

// package.json is one level up from examples/, two from dist/examples/.
const packageJson = ['../package.json', '../../package.json'].map((path) => new URL(path, import.meta.url)).find((url) => existsSync(url)) as URL
const { version } = JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }

/**
 * What a gateway does to publish the plugin's route in its API docs:
 * @fastify/swagger with the plugin's security schemes spread into its components.
 */
export async function registerOpenApi (gateway: FastifyInstance): Promise<void> {
  await gateway.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'fastify-active-conversations',
        version,
        license: { name: 'MIT', identifier: 'MIT' },
        description: "A contact-center manager's live view of one agent: headline metrics, active conversations and the queue the agent could take."
      },
      servers: [{ url: '/', description: 'The gateway that serves this document' }],
      components: { securitySchemes: { ...securitySchemes } }
    },
    // Shared schemas keep their $id as their component name (default: def-0, def-1, …).
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}` }
  })
}

/** The demo's docs: Swagger UI at /docs and the document at /openapi.json. */
export async function registerDocs (gateway: FastifyInstance): Promise<void> {
  await registerOpenApi(gateway)
  await gateway.register(fastifySwaggerUi, { routePrefix: '/docs' })
  gateway.get('/openapi.json', { schema: { hide: true } }, async () => gateway.swagger())
}

/** The OpenAPI document of a gateway with the plugin at its root; no database is touched. */
export async function buildOpenApiDocument (): Promise<unknown> {
  const gateway = Fastify()
  const pool = new pg.Pool() // never connects: no request is made
  await registerOpenApi(gateway)
  await gateway.register(activeConversations, { pool, jwt: { secret: 'openapi-document-only-'.padEnd(32, '-') } })
  await gateway.ready()
  const document = gateway.swagger()
  await gateway.close()
  await pool.end()
  return document
}
