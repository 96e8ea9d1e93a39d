// The README's field table says what the response schema says.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { AgentView, GroupFigures, Skill } from '../schemas/index.js'
import { optionRows } from './helpers/options-table.js'
import { metricRows } from './helpers/metrics-table.js'

type Schema = { type?: string, anyOf?: Schema[], properties?: Record<string, Schema>, items?: Schema, $ref?: string }

/** Every field path of the schema with its type as the README writes it. */
function fields (schema: Schema, prefix = ''): Array<[string, string]> {
  const rows: Array<[string, string]> = []
  for (const [name, field] of Object.entries(schema.properties ?? {})) {
    const path = `${prefix}${name}`
    const resolved = field.$ref === Skill.$id ? Skill as Schema : field
    rows.push([path, resolved.anyOf ? resolved.anyOf.map((s) => s.type).join(' or ') : resolved.type as string])
    if (resolved.properties) rows.push(...fields(resolved, `${path}.`))
    const items = resolved.items?.$ref === Skill.$id ? Skill as Schema : resolved.items
    if (items?.properties) rows.push(...fields(items, `${path}[].`))
  }
  return rows
}

/** The first two cells (a field's path and its type) of each row of the README's table between `<!-- name:start -->` and `<!-- name:end -->`. */
function documentedFields (name: string): Array<[string, string]> {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const table = new RegExp(`<!-- ${name}:start -->([\\s\\S]*?)<!-- ${name}:end -->`).exec(readme)?.[1] ?? ''
  return table.split('\n')
    .map((line) => /^\| `([^`]+)` \| ([^|]+?) \|/.exec(line))
    .filter((match) => match !== null)
    .map((match) => [match[1], match[2]] as [string, string])
}

t.test('the API table of the README lists every field of the 200 body with its type', async (t) => {
  t.same(documentedFields('api-fields'), fields(AgentView as Schema), 'same fields, same order, same types')
})

/** Every cell of each row of the README's table between `<!-- name:start -->` and `<!-- name:end -->`. */
function documentedRows (name: string): string[][] {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const table = new RegExp(`<!-- ${name}:start -->([\\s\\S]*?)<!-- ${name}:end -->`).exec(readme)?.[1] ?? ''
  return table.split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => line.slice(2, -2).split(/ (?<!\\)\| /))
}

t.test('the options table of the README is the options schema: names, types, defaults and meanings', async (t) => {
  t.same(documentedRows('options'), optionRows(), 'same rows, same order (npm run build && node dist/scripts/options-table.js prints them)')
})

t.test('the queue metrics table of the README lists every figure of a group, in order, with its type', async (t) => {
  const figures = fields(GroupFigures as Schema).filter(([path]) => !['agentGroupId', 'name'].includes(path) && !path.startsWith('agents.'))
  t.same(documentedFields('group-figures'), figures, 'same figures, same order, same types')
})

t.test('the metrics table of the README is lib/telemetry/instruments.ts: names, instruments, units, attributes and meanings', async (t) => {
  t.same(documentedRows('metrics'), metricRows(), 'same rows, same order (npm run build && node dist/scripts/metrics-table.js prints them)')
})
