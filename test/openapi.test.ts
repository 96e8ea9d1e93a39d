// The OpenAPI document: generated from the schemas, committed, valid, and true to what the server sends.
import { readFileSync } from 'node:fs'
import t from 'tap'
import Fastify from 'fastify'
import pg from 'pg'
import { createConfig, lintFromString } from '@redocly/openapi-core'
import Ajv2020 from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { buildOpenApiDocument, registerOpenApi } from '../examples/docs.js'
import { startDemo } from '../examples/demo.js'
import activeConversations, { securitySchemes } from '../lib/index.js'
import { freshDatabase } from './helpers/database.js'
import { SECRET } from './helpers/tokens.js'

type Json = any // eslint-disable-line @typescript-eslint/no-explicit-any
const committed: Json = JSON.parse(readFileSync(new URL('../openapi.json', import.meta.url), 'utf8'))
const sample: Json = JSON.parse(readFileSync(new URL('./fixtures/vendor-sample.json', import.meta.url), 'utf8'))
const PATH = '/public/{streamId}/analytics/manager/agent/{agentId}/active-conversations'
const FLOOR_PATH = '/public/{streamId}/analytics/manager/agents/active-conversations'
const METRICS_PATH = '/public/{streamId}/analytics/manager/agent-groups/metrics'
const lintConfig = await createConfig({ extends: ['recommended'] })

/** Every problem @redocly/openapi-core's recommended rules find, as "severity rule: message at pointer". */
async function lint (document: unknown): Promise<string[]> {
  const problems = await lintFromString({ source: JSON.stringify(document), absoluteRef: 'openapi.json', config: lintConfig })
  return problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? ''}`)
}

t.test('openapi.json is up to date with the code (npm run openapi writes it)', async (t) => {
  t.same(await buildOpenApiDocument(), committed, 'regenerate with `npm run openapi` and commit it')
})

t.test('an independent validator finds nothing wrong with it', async (t) => {
  t.same(await lint(committed), [])
  const broken = structuredClone(committed)
  broken.paths[PATH].get.responses['404'].content['application/json'].schema.$ref = '#/components/schemas/Nowhere'
  t.match(await lint(broken), [/no-unresolved-refs/], 'and it would: a dangling $ref is an error')
})

t.test('what the document says of the route', async (t) => {
  const operation = committed.paths[PATH].get
  t.equal(operation.summary, 'Active conversations of an agent')
  t.match(operation.description, /`active`.*`queue`/)
  t.equal(operation.operationId, 'getAgentActiveConversations')
  const parameter = (name: string, where = 'query') => operation.parameters.find((p: Json) => p.name === name && p.in === where)
  t.match(parameter('streamId', 'path'), { in: 'path', required: true, example: 'st-606c43de5e00ca5f4e27e38a', schema: { pattern: '^[A-Za-z0-9_-]{1,64}$', maxLength: 64 } })
  t.match(parameter('agentId', 'path'), { in: 'path', required: true, example: 'a-1234' })
  t.match(parameter('agentId'), { in: 'query', required: false, example: 'a-1234' })
  t.match(parameter('agentGroupId'), { in: 'query', required: false, schema: { type: 'array', maxItems: 50, items: { examples: ['ag-1234'], pattern: '^[A-Za-z0-9_-]{1,64}$' } } })
  t.match(parameter('agentGroupId').description, /comma/)
  t.match(parameter('source'), { in: 'query', schema: { enum: ['chat', 'call'] } })

  const ok = operation.responses['200'].content['application/json']
  t.same(ok.example, sample, 'the vendor page\'s sample response is the 200 example')
  const fields = ok.schema.properties
  t.match(fields.resolutionTime.description, /Whole seconds; null when no conversation/)
  t.match(fields.profImage.description, /no-avatar/)
  t.match(fields.active.items.properties.engagementTime.description, /Whole seconds/)

  for (const status of ['400', '401', '403', '404', '500', '503']) {
    t.same(operation.responses[status].content['application/json'].schema, { $ref: '#/components/schemas/ActiveConversationsError' }, `${status} has the shared error schema`)
  }
  t.same(operation.security, [{ activeConversationsAuthHeader: [] }, { activeConversationsBearer: [] }])
  t.same(committed.components.securitySchemes, securitySchemes, 'the exported schemes are the document\'s')
  t.match(securitySchemes.activeConversationsAuthHeader, { type: 'apiKey', in: 'header', name: 'auth' })
})

t.test('what the document says of the floor route', async (t) => {
  const operation = committed.paths[FLOOR_PATH].get
  t.equal(operation.summary, 'Active conversations of every agent on a floor')
  t.match(operation.description, /ascending `agentId`.*exactly the body the agent route answers/s)
  t.equal(operation.operationId, 'getFloorActiveConversations')
  const parameter = (name: string, where = 'query') => operation.parameters.find((p: Json) => p.name === name && p.in === where)
  t.same(operation.parameters.map((p: Json) => `${p.in as string}:${p.name as string}`).sort(), ['path:streamId', 'query:agentGroupId', 'query:cursor', 'query:limit', 'query:source'])
  t.match(parameter('limit'), { in: 'query', required: false, example: 100, schema: { type: 'integer', minimum: 1, maximum: 500, default: 100 } })
  t.match(parameter('cursor'), { in: 'query', required: false, schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,200}$' } })
  t.match(parameter('cursor').description, /nextCursor/)
  t.match(parameter('agentGroupId').description, /members of at least one of these groups/)
  const ok = operation.responses['200'].content['application/json']
  t.same(ok.example, { agents: [{ agentId: 'a-1234', ...sample }], nextCursor: null }, 'the example: the vendor sample as a floor item')
  t.same(Object.keys(ok.schema.properties), ['agents', 'nextCursor'])
  t.same(Object.keys(ok.schema.properties.agents.items.properties), ['agentId', ...Object.keys(committed.paths[PATH].get.responses['200'].content['application/json'].schema.properties)],
    'an item: agentId, then the agent route\'s fields')
  for (const status of ['400', '401', '403', '429', '500', '503']) {
    t.same(operation.responses[status].content['application/json'].schema, { $ref: '#/components/schemas/ActiveConversationsError' }, `${status} has the shared error schema`)
  }
  t.notOk(operation.responses['404'], 'no 404: an unknown group is an empty floor')
  t.same(operation.security, [{ activeConversationsAuthHeader: [] }, { activeConversationsBearer: [] }])
})

t.test('what the document says of the queue metrics route', async (t) => {
  const operation = committed.paths[METRICS_PATH].get
  t.equal(operation.summary, 'Queue metrics of agent groups')
  t.equal(operation.operationId, 'getAgentGroupsMetrics')
  const parameter = (name: string) => operation.parameters.find((p: Json) => p.name === name && p.in === 'query')
  t.same(operation.parameters.map((p: Json) => `${p.in as string}:${p.name as string}`).sort(), ['path:streamId', 'query:agentGroupId', 'query:serviceLevelSeconds', 'query:source'])
  t.match(parameter('serviceLevelSeconds'), { required: false, example: 20, schema: { type: 'integer', minimum: 1, maximum: 3600, default: 20 } })
  const ok = operation.responses['200'].content['application/json']
  t.same(Object.keys(ok.schema.properties), ['groups', 'ungrouped', 'totals'])
  t.same(Object.keys(ok.example.groups[0]), Object.keys(ok.schema.properties.groups.items.properties), 'the example has every field of a group, in order')
  t.match(ok.schema.properties.totals.description, /each agent counted once/)
  t.match(operation.responses['400'].content['application/json'].examples, { FAC_ERR_INVALID_REQUEST: { value: { message: /more than 500 agent groups/ } } })
  for (const status of ['400', '401', '403', '429', '500', '503']) {
    t.same(operation.responses[status].content['application/json'].schema, { $ref: '#/components/schemas/ActiveConversationsError' }, `${status} has the shared error schema`)
  }
  t.notOk(operation.responses['404'], 'no 404: an unknown group is left out')
})

t.test('twice under two prefixes, in a gateway with documented routes of its own', async (t) => {
  const gateway = Fastify()
  const pool = new pg.Pool()
  t.teardown(async () => { await gateway.close(); await pool.end() })
  await registerOpenApi(gateway)
  gateway.addSchema({ $id: 'Health', type: 'object', properties: { ok: { type: 'boolean' } } })
  gateway.get('/health', { schema: { summary: 'Health', operationId: 'health', security: [], response: { 200: { $ref: 'Health#' }, 400: { $ref: 'Health#' } } } }, async () => ({ ok: true }))
  await gateway.register(activeConversations, { prefix: '/v1', pool, jwt: { secret: SECRET } })
  await gateway.register(activeConversations, { prefix: '/v2', pool, jwt: { secret: SECRET } })
  await gateway.ready()
  const document: Json = gateway.swagger()
  t.ok(document.paths[`/v1${PATH}`] && document.paths[`/v2${PATH}`] && document.paths['/health'], 'every route is in it')
  t.same(Object.keys(document.components.schemas).sort(), ['ActiveConversationsError', 'ActiveConversationsSkill', 'Health'], 'each shared schema once')
  t.same(await lint(document), [], 'valid as a whole')
  t.same([PATH, FLOOR_PATH].flatMap((path) => [document.paths[`/v1${path}`].get.operationId, document.paths[`/v2${path}`].get.operationId]),
    ['v1GetAgentActiveConversations', 'v2GetAgentActiveConversations', 'v1GetFloorActiveConversations', 'v2GetFloorActiveConversations'], 'an operationId of its own for each registration')
})

t.test('a live answer through the demo gateway matches the document\'s own 200 schema', async (t) => {
  const db = await freshDatabase(t, { migrated: false })
  const demo = await startDemo({ host: '127.0.0.1', port: 0, databaseUrl: db.connectionString, jwtSecret: SECRET, logger: false })
  t.teardown(() => demo.close())

  const served: Json = await (await fetch(demo.openApiUrl)).json()
  t.same(served.paths[PATH], committed.paths[PATH], 'the demo serves the document')
  const docs = await fetch(demo.docsUrl)
  t.equal(docs.status, 200, 'and Swagger UI')

  const ajv = addFormats.default(new Ajv2020.default({ strict: false }))
  ajv.addSchema({ $id: 'openapi.json', components: served.components })
  const schema = JSON.parse(JSON.stringify(served.paths[PATH].get.responses['200'].content['application/json'].schema)
    .replaceAll('"#/components/', '"openapi.json#/components/'))
  const validate = ajv.compile(schema)
  const body = await (await fetch(demo.url, { headers: { auth: demo.token } })).json()
  t.equal(body.active.length, 2, 'a real answer, with conversations')
  t.ok(validate(body), `valid: ${JSON.stringify(validate.errors)}`)
  t.notOk(validate({ ...body, extra: true }), 'and the schema would notice a field it does not know')

  t.same(served.paths[FLOOR_PATH], committed.paths[FLOOR_PATH], 'the floor route too')
  const validateFloor = ajv.compile(JSON.parse(JSON.stringify(served.paths[FLOOR_PATH].get.responses['200'].content['application/json'].schema)
    .replaceAll('"#/components/', '"openapi.json#/components/')))
  const floor = await (await fetch(new URL(demo.url).origin + '/public/st-606c43de5e00ca5f4e27e38a/analytics/manager/agents/active-conversations', { headers: { auth: demo.token } })).json()
  t.same(floor.agents.map((agent: Json) => agent.agentId), ['a-1234', 'a-2345', 'a-3456'], 'a real floor')
  t.ok(validateFloor(floor), `valid: ${JSON.stringify(validateFloor.errors)}`)

  t.same(served.paths[METRICS_PATH], committed.paths[METRICS_PATH], 'the queue metrics route too')
  const validateMetrics = ajv.compile(served.paths[METRICS_PATH].get.responses['200'].content['application/json'].schema)
  const metrics = await (await fetch(new URL(demo.url).origin + '/public/st-606c43de5e00ca5f4e27e38a/analytics/manager/agent-groups/metrics', { headers: { auth: demo.token } })).json()
  t.same(metrics.groups.map((group: Json) => [group.agentGroupId, group.name, group.waiting]), [['ag-1234', 'Sales', 3], ['ag-5678', 'Support', 1]], 'real figures')
  t.match(metrics.totals, { waiting: 5, abandoned: 1, agents: { available: 1, busy: 1, away: 1, offline: 0 } })
  t.ok(validateMetrics(metrics), `valid: ${JSON.stringify(validateMetrics.errors)}`)
  t.notOk(validateMetrics({ ...metrics, totals: { ...metrics.totals, serviceLevel: 2 } }), 'and its schema would notice a share above 1')
  t.notOk(validateFloor({ ...floor, agents: [{ ...floor.agents[0], extra: 1 }] }), 'and its schema would notice a field it does not know')
})
