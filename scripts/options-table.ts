// Prints the README's options table from the options schema (schemas/options.ts); test/readme.test.ts checks the README against it.
import { optionRows } from '../test/helpers/options-table.js'

console.log(['| option | type | default | meaning |', '|---|---|---|---|', ...optionRows().map((row) => `| ${row.join(' | ')} |`)].join('\n'))
