// The plugin's own pool, and which failures count as "database unavailable".
import t from 'tap'
import pg from 'pg'
import { createPool, DEFAULT_POOL_SETTINGS, isDatabaseUnavailable } from '../lib/database.js'
import { adminUrl, freshDatabase } from './helpers/database.js'

const db = await freshDatabase(t)

t.test('its sessions are read-only and have the statement timeout', async (t) => {
  const pool = createPool(db.connectionString, { ...DEFAULT_POOL_SETTINGS, statementTimeoutMillis: 1234 }, () => {})
  t.teardown(() => pool.end())
  t.equal((await pool.query('SHOW default_transaction_read_only')).rows[0].default_transaction_read_only, 'on')
  t.equal((await pool.query('SHOW statement_timeout')).rows[0].statement_timeout, '1234ms')
  t.equal((await pool.query('SELECT current_setting($1) AS name', ['application_name'])).rows[0].name, 'fastify-active-conversations')
  await t.rejects(pool.query("INSERT INTO skills (stream_id, id, name) VALUES ('s', 'k', 'n')"), { code: '25006' }, 'no write goes through')
})

t.test('query_timeout frees the client when no answer comes', async (t) => {
  const pool = createPool(db.connectionString, { ...DEFAULT_POOL_SETTINGS, statementTimeoutMillis: 10_000, queryTimeoutMillis: 200 }, () => {})
  t.teardown(() => pool.end())
  const error = await pool.query('SELECT pg_sleep(2)').catch((e: Error) => e)
  t.match(error, { message: 'Query read timeout' })
  t.ok(isDatabaseUnavailable(error), 'an outage (503), not a bug')
  t.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1, 'and the pool goes on')
})

t.test('an idle connection killed by Postgres reaches the error listener, not the process', async (t) => {
  const errors: Error[] = []
  const pool = createPool(db.connectionString, DEFAULT_POOL_SETTINGS, (error) => errors.push(error))
  t.teardown(() => pool.end())
  const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
  const admin = new pg.Client({ connectionString: adminUrl() })
  await admin.connect()
  await admin.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid])
  await admin.end()
  for (let i = 0; i < 50 && errors.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(errors.length, 1, 'the listener heard it')
  t.ok(isDatabaseUnavailable(errors[0]), 'and it is an outage, not a bug')
  t.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1, 'the pool connects again by itself')
})

t.test('what counts as "database unavailable"', async (t) => {
  const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code })
  const unavailable = [
    withCode('57014', 'canceling statement due to statement timeout'),
    withCode('57P01', 'terminating connection due to administrator command'),
    withCode('53300', 'sorry, too many clients already'),
    withCode('08006'),
    withCode('28P01', 'password authentication failed'),
    withCode('3D000', 'database does not exist'),
    withCode('ECONNREFUSED'),
    new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')], 'connect failed'),
    new Error('timeout exceeded when trying to connect'),
    new Error('Connection terminated unexpectedly'),
    new Error('Query read timeout'),
    new Error('Cannot use a pool after calling end on the pool')
  ]
  for (const error of unavailable) t.ok(isDatabaseUnavailable(error), `${(error as { code?: string }).code ?? ''} ${error.message}`)
  const bugs = [
    withCode('42P01', 'relation "agents" does not exist'),
    withCode('42601', 'syntax error'),
    withCode('25006', 'cannot execute INSERT in a read-only transaction'),
    new TypeError('undefined is not a function'),
    new AggregateError([new Error('a')], 'b'),
    'a string',
    null
  ]
  for (const error of bugs) t.notOk(isDatabaseUnavailable(error), String(error))
})
