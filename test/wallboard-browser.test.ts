// The wallboard in a real browser: the demo stream's queues from the queue
// metrics stream and its floor from the floor stream, and a conversation
// inserted in the database on the page within a second.
import { existsSync, mkdirSync } from 'node:fs'
import t from 'tap'
import pg from 'pg'
import { startDemo } from '../examples/demo.js'
import { DEMO_STREAM_ID } from '../examples/demo-data.js'
import { chromiumMissing, launchChromium } from './helpers/browser.js'
import { freshDatabase } from './helpers/database.js'
import { SECRET } from './helpers/tokens.js'

export const SCREENSHOT = new URL('../.tap/wallboard.png', import.meta.url).pathname

// Elsewhere than CI, without chromium the test says plainly why it is skipped.
const missing = chromiumMissing()

t.test('/wallboard shows the queues and the floor, and a new conversation within a second', { skip: missing }, async (t) => {
  const db = await freshDatabase(t, { migrated: false })
  const demo = await startDemo({ host: '127.0.0.1', port: 0, databaseUrl: db.connectionString, jwtSecret: SECRET, logger: false })
  t.teardown(() => demo.close())

  const browser = await launchChromium(t)
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 } })
  await page.goto(demo.wallboardUrl)

  const amanda = page.locator('[data-agent="a-1234"]')
  await amanda.waitFor()
  t.equal(await page.locator('.agent').count(), 3, 'the demo stream\'s three agents')
  t.equal(await amanda.locator('.name').innerText(), 'Amanda Jones')
  t.equal(await amanda.locator('.status').innerText(), 'AVAILABLE', 'her status (shown in capitals)')
  t.equal(await amanda.locator('.active b').innerText(), '2', 'the two conversations she handles')
  t.equal(await amanda.locator('.queue b').innerText(), '3', 'and the three she could take')
  const since = await amanda.locator('.active .since').innerText()
  t.match(since, /^for 1[78]:\d\d$/, 'since when: her oldest conversation, accepted 17 minutes ago')
  await page.waitForFunction((before) => document.querySelector('[data-agent="a-1234"] .active .since')?.textContent !== before, since, { timeout: 3000 })
  t.pass('the durations tick between events')

  // The queues: a tile per group, the totals in the header.
  const sales = page.locator('[data-group="ag-1234"]')
  const support = page.locator('[data-group="ag-5678"]')
  await support.waitFor()
  t.equal(await page.locator('.tile').count(), 2, 'a tile per group of the demo stream')
  t.equal(await sales.locator('.name').innerText(), 'Sales')
  t.equal(await sales.locator('.waiting b').innerText(), '3', 'three wait in Sales')
  t.match(await sales.locator('.waiting .since').innerText(), /^longest 3:1\d$/, 'the longest for 3:10 and more')
  t.equal(await sales.locator('.agents').innerText(), '1 available · 0 busy · 1 away', 'Amanda available, Chen away')
  t.equal(await support.locator('.abandoned b').innerText(), '1', 'Support lost a call')
  t.equal(await support.locator('.sl b').innerText(), '0 %', 'its service level: none answered in time')
  t.equal(await support.locator('.sl span').innerText(), 'in 20 s')
  t.ok(await support.evaluate((tile) => tile.classList.contains('low')), 'below 80 %: marked')
  t.equal(await sales.locator('.sl b').innerText(), '100 %', 'Sales answered its four within 20 s')
  t.notOk(await sales.evaluate((tile) => tile.classList.contains('low')), 'not marked')
  t.equal(await page.locator('#total-waiting').innerText(), '5', 'the header: everything that waits, ungrouped too')
  t.equal(await page.locator('#total-agents').innerText(), '1 · 1 · 1')
  const longest = await page.locator('#total-wait').innerText()
  await page.waitForFunction((before) => document.querySelector('#total-wait')?.textContent !== before, longest, { timeout: 3000 })
  t.pass('the longest wait ticks between events')

  // A conversation arrives for nobody's group in particular: every agent could take it.
  const writer = new pg.Client({ connectionString: db.connectionString })
  await writer.connect()
  t.teardown(() => writer.end())
  const inserted = Date.now()
  await writer.query(`INSERT INTO conversations (stream_id, id, source, status, customer_first_name, customer_last_name, started_at, queued_at)
                      VALUES ($1, 'c-browser', 'chat', 'queued', 'Web', 'Test', now(), now())`, [DEMO_STREAM_ID])
  await page.waitForFunction(() => document.querySelector('[data-agent="a-1234"] .queue b')?.textContent === '4', undefined, { timeout: 1000 })
  t.ok(Date.now() - inserted <= 1000, `on the page within a second (${Date.now() - inserted} ms)`)
  await page.waitForFunction(() => document.querySelector('#total-waiting')?.textContent === '6', undefined, { timeout: 1000 })
  t.ok(Date.now() - inserted <= 1000, `and in the header within a second (${Date.now() - inserted} ms)`)

  // One queued in Support: its tile and the header.
  const queued = Date.now()
  await writer.query(`INSERT INTO conversations (stream_id, id, source, status, customer_first_name, customer_last_name, agent_group_id, started_at, queued_at)
                      VALUES ($1, 'c-browser-2', 'call', 'queued', 'Web', 'Test', 'ag-5678', now(), now())`, [DEMO_STREAM_ID])
  await page.waitForFunction(() => document.querySelector('[data-group="ag-5678"] .waiting b')?.textContent === '2' &&
    document.querySelector('#total-waiting')?.textContent === '7', undefined, { timeout: 1000 })
  t.ok(Date.now() - queued <= 1000, `its group's tile and the header within a second (${Date.now() - queued} ms)`)

  mkdirSync(new URL('../.tap/', import.meta.url), { recursive: true })
  await page.screenshot({ path: SCREENSHOT })
  t.ok(existsSync(SCREENSHOT), `screenshot saved: ${SCREENSHOT}`)
})
