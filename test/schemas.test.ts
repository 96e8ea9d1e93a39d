// The TypeBox schemas against the vendor page's sample response.
import { readFileSync } from 'node:fs'
import t from 'tap'
import Ajv from 'ajv'
import addFormats from 'ajv-formats'
import { AgentView, ErrorResponse, Params, Querystring, Skill } from '../schemas/index.js'

const sample = JSON.parse(readFileSync(new URL('./fixtures/vendor-sample.json', import.meta.url), 'utf8'))
// Validated as Fastify validates: Ajv 8 with formats, the shared schemas registered by $id.
const ajv = addFormats.default(new Ajv.default({ strict: false }))
ajv.addSchema(Skill)
const check = ajv.compile(AgentView)

t.test('the vendor page\'s sample response is a valid AgentView', async (t) => {
  t.ok(check(sample), JSON.stringify(check.errors))
  t.same(Object.keys(AgentView.properties).sort(), Object.keys(sample).sort(), 'the same top-level fields, no others')
  t.same(Object.keys(AgentView.properties.active.items.properties).sort(), Object.keys(sample.active[0]).sort())
  t.same(Object.keys(AgentView.properties.queue.items.properties).sort(), Object.keys(sample.queue[0]).sort())
})

t.test('and the schema is strict about it', async (t) => {
  const variants: Array<[string, (body: typeof sample) => void]> = [
    ['an extra field', (body) => { body.extra = 1 }],
    ['a missing field', (body) => { delete body.onlineStatus }],
    ['an unknown onlineStatus', (body) => { body.onlineStatus = 'sleeping' }],
    ['a fractional duration', (body) => { body.active[0].waitTime = 1.5 }],
    ['a negative duration', (body) => { body.queue[0].waitTime = -1 }],
    ['a metric as a string', (body) => { body.resolutionTime = '90' }],
    ['engagementTime in the queue', (body) => { body.queue[0].engagementTime = 3 }],
    ['a skill without a name', (body) => { delete body.active[0].skills[0].name }],
    ['an unknown source', (body) => { body.active[0].source = 'sms' }],
    ['a startTime that is no date-time', (body) => { body.active[0].startTime = 'yesterday' }]
  ]
  for (const [what, change] of variants) {
    const body = structuredClone(sample)
    change(body)
    t.notOk(check(body), `rejects ${what}`)
  }
  const nullMetrics = { ...structuredClone(sample), resolutionTime: null, firstResponseTime: null, responseTime: null }
  t.ok(check(nullMetrics), 'metrics may be null')
})

t.test('request and error schemas', async (t) => {
  t.equal(Params.properties.streamId.pattern, '^[A-Za-z0-9_-]{1,64}$')
  t.same(Querystring.properties.source.enum, ['chat', 'call'])
  t.equal(Querystring.properties.agentGroupId.maxItems, 50)
  t.same(ErrorResponse.required, ['statusCode', 'code', 'error', 'message'])
})
