// npm run openapi: writes openapi.json, the document a gateway publishes for this plugin's route.
import { writeFileSync } from 'node:fs'
import { buildOpenApiDocument } from '../examples/docs.js'

const target = new URL('../../openapi.json', import.meta.url)
writeFileSync(target, `${JSON.stringify(await buildOpenApiDocument(), null, 2)}\n`)
console.log(`Wrote ${target.pathname}`)
