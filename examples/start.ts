// npm start: the demo gateway on the embedded database (or $DATABASE_URL).
import { startDemo } from './demo.js'

const demo = await startDemo({
  host: process.env.HOST ?? '127.0.0.1',
  port: Number(process.env.PORT ?? 3000),
  databaseUrl: process.env.DATABASE_URL || undefined,
  logger: true
})

console.log(`
fastify-active-conversations demo gateway is ready.

Demo token (role manager, stream st-606c43de5e00ca5f4e27e38a, 24 hours):
${demo.token}

Try it:
${demo.curl}
`)

let closing = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (closing) return
    closing = true
    demo.close().then(() => process.exit(0), (error: unknown) => {
      console.error(error)
      process.exit(1)
    })
  })
}
