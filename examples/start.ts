// npm start: the demo gateway on the embedded database (or $DATABASE_URL).
import { demoOptionsFromEnv, startDemo, type Demo } from './demo.js'
import { installMetrics } from './metrics.js'

let demo: Demo
try {
  // The OpenTelemetry metrics SDK goes in before the plugin registers: the plugin takes its meter then.
  demo = await startDemo({ ...demoOptionsFromEnv(process.env), metrics: installMetrics() })
} catch (error) {
  // One line that says why and what to do (startDemo has cleaned up): no stack for a person to read through.
  console.error(`npm start: the demo could not start: ${(error as Error).message}`)
  process.exit(1)
}

console.log(`
fastify-active-conversations demo gateway is ready.

Demo token (role manager, stream st-606c43de5e00ca5f4e27e38a, 24 hours):
${demo.token}

Try it:
${demo.curl}

The whole floor of the demo stream, every agent in one request:
${demo.floorCurl}

The floor, live, for a wallboard (the demo changes a conversation every few seconds; DEMO_WRITER=off stops that):
${demo.wallboardUrl}

The same floor as server-sent events:
curl -sN -H 'auth: ${demo.token}' '${demo.floorCurl.split("'").at(-2) as string}/events'

API docs (Swagger UI; paste the token under Authorize): ${demo.docsUrl}
OpenAPI document: ${demo.openApiUrl}

The plugin's metrics (OpenTelemetry, Prometheus text format): ${demo.metricsUrl as string}
`)

// Server, pool and database close in that order, then exit 0; a failure to close exits 1 (unhandled rejection).
const stop = async (): Promise<void> => {
  await demo.close()
  process.exit(0)
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
