// Prints the README's metrics table from lib/telemetry/instruments.ts; test/readme.test.ts checks the README against it.
import { metricRows } from '../test/helpers/metrics-table.js'

console.log(['| metric | instrument | unit | attributes | what it tells |', '|---|---|---|---|---|', ...metricRows().map((row) => `| ${row.join(' | ')} |`)].join('\n'))
