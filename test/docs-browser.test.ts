// The docs page in a real browser: Swagger UI, Authorize with the demo token, Try it out, Execute, 200.
import { existsSync, mkdirSync } from 'node:fs'
import t from 'tap'
import { startDemo } from '../examples/demo.js'
import { chromiumMissing, launchChromium } from './helpers/browser.js'
import { freshDatabase } from './helpers/database.js'
import { SECRET } from './helpers/tokens.js'

/** Where the screenshot goes: tap's output directory. */
export const SCREENSHOT = new URL('../.tap/docs-try-it-out.png', import.meta.url).pathname

// Elsewhere than CI, without chromium the test says plainly why it is skipped.
const missing = chromiumMissing()

t.test('Swagger UI at /docs runs the request with the demo token and shows a 200', { skip: missing }, async (t) => {
  const db = await freshDatabase(t, { migrated: false })
  const demo = await startDemo({ host: '127.0.0.1', port: 0, databaseUrl: db.connectionString, jwtSecret: SECRET, logger: false })
  t.teardown(() => demo.close())

  const browser = await launchChromium(t)
  const page = await browser.newPage({ viewport: { width: 1280, height: 2000 } })
  await page.goto(demo.docsUrl)

  await page.getByRole('button', { name: 'Authorize' }).first().click()
  const scheme = page.locator('.auth-container').filter({ hasText: 'activeConversationsAuthHeader' })
  await scheme.locator('input').fill(demo.token)
  await scheme.getByRole('button', { name: 'Apply credentials' }).click()
  t.match(await scheme.innerText(), /Authorized/, 'Swagger UI holds the token')
  await page.locator('.btn-done').first().click()

  await page.locator('.opblock-summary').first().click()
  await page.getByRole('button', { name: 'Try it out' }).click()
  // The path parameters start out with the documented examples: the demo's stream and agent.
  t.equal(await page.locator('input[placeholder="streamId"]').inputValue(), 'st-606c43de5e00ca5f4e27e38a')
  t.equal(await page.locator('input[placeholder="agentId"]').first().inputValue(), 'a-1234')
  await page.getByRole('button', { name: 'Execute' }).click()

  const live = page.locator('.live-responses-table tr.response')
  await live.waitFor()
  t.equal((await live.locator('.response-col_status').innerText()).trim(), '200', 'the page shows a 200')
  const body = await live.locator('.response-col_description pre').first().innerText()
  t.match(body, /"name": "Amanda Jones"/, 'with the demo agent')
  t.match(body, /"conversationId": "c-1233"/, 'and her active conversations')

  mkdirSync(new URL('../.tap/', import.meta.url), { recursive: true })
  await page.screenshot({ path: SCREENSHOT }) // the viewport: the operation down to the response body
  t.ok(existsSync(SCREENSHOT), `screenshot saved: ${SCREENSHOT}`)
})
