import { existsSync } from 'node:fs'
import t from 'tap'
import { chromium, type Browser } from 'playwright-core'

/** Debian's chromium, which CI installs (.ci/run): playwright never downloads a browser of its own here. */
export const CHROMIUM = '/usr/bin/chromium'

/**
 * Why a browser test is skipped (chromium is missing), or false. Under CI it
 * fails instead: CI must have it.
 */
export function chromiumMissing (): string | false {
  const missing = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: apt-get install chromium to run the browser test`
  if (missing && process.env.CI) t.fail(`${missing} (CI must have it)`)
  return missing
}

/** Headless chromium, closed at teardown. */
export async function launchChromium (test: { teardown: (fn: () => unknown) => void }): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
  })
  test.teardown(() => browser.close())
  return browser
}
