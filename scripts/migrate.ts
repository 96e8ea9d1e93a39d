#!/usr/bin/env node
// npm run migrate (or the package bin fastify-active-conversations-migrate): applies the pending migrations to $DATABASE_URL.
import { migrate } from '../lib/migrate.js'

const url = process.env.DATABASE_URL
if (!url) {
  console.error('Set DATABASE_URL, e.g. DATABASE_URL=postgres://user:pass@localhost/db npm run migrate')
  process.exit(2)
}
const applied = await migrate(url)
console.log(applied.length === 0 ? 'Up to date.' : `Applied: ${applied.join(', ')}`)
