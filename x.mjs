import pg from 'pg'
import { readFileSync } from 'node:fs'
import { AGENT_VIEW_SQL } from './dist/lib/query.js'
const c = new pg.Client({ connectionString: readFileSync('/tmp/explore/url', 'utf8') }); await c.connect()
for (const mode of ['force_custom_plan', 'force_generic_plan', 'auto']) {
  await c.query(`SET plan_cache_mode = ${mode}`); await c.query('DEALLOCATE ALL')
  const name = 'v' + mode
  const run = (i) => c.query({ name, text: AGENT_VIEW_SQL, values: ['st-3', 'a-' + (i % 1000), null, null, null, 86400] })
  for (let i = 0; i < 10; i++) await run(i)
  const t0 = process.hrtime.bigint(); for (let i = 0; i < 500; i++) await run(i); console.log(mode, 'per execution ms', Number(process.hrtime.bigint() - t0) / 1e6 / 500)
}
const t0 = process.hrtime.bigint(); for (let i = 0; i < 500; i++) await c.query({ name: 's1', text: 'SELECT 1' }); console.log('SELECT 1 per execution ms', Number(process.hrtime.bigint() - t0) / 1e6 / 500)
await c.query('SET plan_cache_mode = force_generic_plan')
await c.query('PREPARE w(text, text, text, text[], text[], int) AS ' + AGENT_VIEW_SQL)
await c.query("EXECUTE w('st-3', 'a-517', null, null, null, 86400)")
const r = await c.query("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING ON) EXECUTE w('st-3', 'a-517', null, null, null, 86400)")
console.log(r.rows.map(x => x['QUERY PLAN']).filter(l => !/Index Searches|Heap Fetches|Storage:|Sort Method|Memory Usage/.test(l)).join('\n'))
await c.end()
