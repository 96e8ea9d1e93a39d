// No change missed, none shown stale, none crossing streams: random sequences
// of writes through every published table (inserts; updates that move
// conversations between agents, groups and streams; deletes; a truncation;
// skill renames; memberships and skills; rolled-back transactions), then every
// open stream's last view must equal the GET answer, durations aside. Polling
// is set to once a minute: what the streams show came from the decoded WAL.
import t from 'tap'
import type pg from 'pg'
import { FLOOR_ROUTE_URL } from '../lib/index.js'
import { withoutDurations } from './helpers/bodies.js'
import { freshDatabase } from './helpers/database.js'
import { listen, type EventClient } from './helpers/events.js'
import { gateway, viewUrl } from './helpers/gateway.js'
import { insertStream } from './helpers/rows.js'
import { managerToken } from './helpers/tokens.js'

const STREAMS = ['s1', 's2']
const GROUPS = ['g1', 'g2', 'g3']
const AGENTS = ['a1', 'a2', 'a3', 'a4']
const SKILLS = ['k1', 'k2']
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A small deterministic generator (mulberry32): a failing sequence can be run again from its seed. */
function random (seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const db = await freshDatabase(t)
for (const stream of STREAMS) {
  await insertStream(db.pool, stream, {
    groups: GROUPS,
    skills: SKILLS,
    agents: AGENTS.map((id, i) => ({ id, groups: [GROUPS[i % 3] as string], skills: [SKILLS[i % 2] as string] }))
  })
}

/** One random write (a statement or a few, in one transaction); undefined when it only reads. */
function writes (next: () => number, n: number): string[] {
  const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)] as T
  const stream = pick(STREAMS)
  const other = stream === 's1' ? 's2' : 's1'
  const agent = pick(AGENTS)
  const group = pick(GROUPS)
  const id = `${stream}-c${Math.floor(next() * 12)}`
  const q = (text: string) => text.replaceAll('$S', `'${stream}'`).replaceAll('$O', `'${other}'`).replaceAll('$A', `'${agent}'`).replaceAll('$G', `'${group}'`).replaceAll('$C', `'${id}'`)
  switch (Math.floor(next() * 14)) {
    case 0: case 1: return [q(`INSERT INTO conversations (stream_id, id, source, status, customer_first_name, customer_last_name, agent_group_id, started_at, queued_at)
      VALUES ($S, $C, 'chat', 'queued', 'Q${n}', 'X', ${next() < 0.3 ? 'NULL' : '$G'}, now(), now()) ON CONFLICT DO NOTHING`)]
    case 2: return [q(`UPDATE conversations SET status = 'active', agent_id = $A, accepted_at = now() WHERE stream_id = $S AND id = $C AND status = 'queued'`)]
    case 3: return [q(`UPDATE conversations SET agent_id = $A, customer_first_name = 'M${n}' WHERE stream_id = $S AND id = $C AND status = 'active'`)]
    case 4: return [q(`UPDATE conversations SET agent_group_id = $G WHERE stream_id = $S AND id = $C`)]
    case 5: return [q(`UPDATE conversations SET status = 'closed', closed_at = now() WHERE stream_id = $S AND id = $C AND status = 'active'`)]
    case 6: return [q(`DELETE FROM conversations WHERE stream_id = $S AND id = $C`)]
    case 7: // to the other stream, its id renamed there (ids carry their stream: a leak would show)
      return [q(`UPDATE conversations SET stream_id = $O, id = $O || substr(id, 3), agent_id = NULL, status = 'queued', accepted_at = NULL, closed_at = NULL
        WHERE stream_id = $S AND id = $C AND NOT EXISTS (SELECT FROM conversations WHERE stream_id = $O AND id = $O || substr($C, 3))
        AND NOT EXISTS (SELECT FROM conversation_skills WHERE stream_id = $S AND conversation_id = $C)`)]
    case 8: return [q(`INSERT INTO conversation_skills (stream_id, conversation_id, skill_id) SELECT $S, $C, '${pick(SKILLS)}' WHERE EXISTS (SELECT FROM conversations WHERE stream_id = $S AND id = $C) ON CONFLICT DO NOTHING`)]
    case 9: return [q(`UPDATE skills SET name = 'Skill ${n}' WHERE stream_id = $S AND id = '${pick(SKILLS)}'`)]
    case 10: return next() < 0.5
      ? [q(`INSERT INTO agent_group_members (stream_id, agent_group_id, agent_id) VALUES ($S, $G, $A) ON CONFLICT DO NOTHING`)]
      : [q(`DELETE FROM agent_group_members WHERE stream_id = $S AND agent_group_id = $G AND agent_id = $A`)]
    case 11: return next() < 0.5
      ? [q(`INSERT INTO agent_skills (stream_id, agent_id, skill_id) VALUES ($S, $A, '${pick(SKILLS)}') ON CONFLICT DO NOTHING`)]
      : [q(`DELETE FROM agent_skills WHERE stream_id = $S AND agent_id = $A AND skill_id = '${pick(SKILLS)}'`)]
    case 12: return [q(`UPDATE agents SET online_status = '${pick(['available', 'busy', 'away', 'offline'])}', first_name = 'N${n}' WHERE stream_id = $S AND id = $A`)]
    default: return next() < 0.2 ? ['TRUNCATE conversation_skills, conversations'] : [q(`UPDATE agent_groups SET name = 'G${n}' WHERE stream_id = $S AND id = $G`)]
  }
}

async function run (pool: pg.Pool, next: () => number, count: number): Promise<void> {
  const client = await pool.connect()
  try {
    for (let n = 0; n < count; n++) {
      const rollBack = next() < 0.1
      const statements = [...writes(next, n), ...(next() < 0.3 ? writes(next, n) : [])] // some transactions write twice
      await client.query('BEGIN')
      try {
        for (const text of statements) await client.query(text)
        await client.query(rollBack ? 'ROLLBACK' : 'COMMIT')
      } catch {
        await client.query('ROLLBACK') // a foreign key refused it: nothing of it was committed
      }
      if (next() < 0.2) await sleep(Math.floor(next() * 60)) // sometimes across coalescing windows, sometimes within one
    }
  } finally {
    client.release()
  }
}

for (const seed of [19, 2026]) {
  t.test(`seed ${seed}: every stream's last view is the GET answer; no stream sees another's conversations`, async (t) => {
    const app = await gateway(t, { pool: db.pool, live: { coalesceMillis: 20, pollMillis: 60_000, maxStreamsPerCaller: 100 } })
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    const floorUrl = (stream: string, query = '') => `${FLOOR_ROUTE_URL.replace(':streamId', stream)}${query}`
    const streams: Array<{ stream: string, url: string, token: string, floor: boolean, client: EventClient }> = []
    for (const stream of STREAMS) {
      const whole = managerToken([stream])
      const scoped = managerToken([stream], ['g1'])
      const opens = [
        ...AGENTS.map((agent) => ({ url: viewUrl(stream, agent), token: whole, floor: false })),
        { url: viewUrl(stream, 'a1'), token: scoped, floor: false },
        { url: floorUrl(stream), token: whole, floor: true },
        { url: floorUrl(stream, '?agentGroupId=g2'), token: whole, floor: true },
        { url: floorUrl(stream), token: scoped, floor: true }
      ]
      for (const open of opens) {
        const [path, query = ''] = open.url.split('?')
        const client = listen(`${base}${path}/events${query === '' ? '' : `?${query}`}`, open.token)
        t.teardown(() => { client.close() })
        streams.push({ stream, ...open, client })
      }
    }
    await Promise.all(streams.map(async ({ client }) => { await client.opened }))
    await sleep(300)

    await run(db.pool, random(seed), 150)
    await sleep(1000) // the last coalescing window and its reads

    for (const { stream, url, token, floor, client } of streams) {
      const answer = await app.inject({ url, headers: { auth: token } })
      const other = stream === 's1' ? 's2-' : 's1-'
      t.notOk(client.events.some((event) => event.data.includes(`"conversationId":"${other}`)), `${url}: never a conversation of the other stream`)
      if (!floor) {
        const last = client.events.at(-1)
        if (answer.statusCode === 200) {
          t.equal(withoutDurations(last?.data ?? ''), withoutDurations(answer.body), `${url}: the last view is the GET answer`)
        } else if (last === undefined) {
          t.pass(`${url}: refused before it opened (an earlier seed's writes), as GET answers ${answer.statusCode}`)
        } else {
          t.equal(last.type, 'error', `${url}: ended with ${answer.statusCode}, as GET answers`)
          t.equal((JSON.parse(last.data) as { statusCode: number }).statusCode, answer.statusCode)
        }
        continue
      }
      const shown = new Map<string, unknown>() // the floor as the stream left it: each agent's last view, minus the removed
      for (const event of client.events) {
        const agentId = (JSON.parse(event.data) as { agentId: string }).agentId
        if (event.type === 'remove') shown.delete(agentId)
        else if (event.type === 'view') shown.set(agentId, JSON.parse(withoutDurations(event.data)))
      }
      const page = JSON.parse(answer.body) as { agents: unknown[] }
      t.same([...shown.keys()].sort(), page.agents.map((agent) => (agent as { agentId: string }).agentId).sort(), `${url}: the same agents`)
      for (const agent of page.agents) {
        const item = JSON.parse(withoutDurations(JSON.stringify(agent))) as unknown
        t.same(shown.get((agent as { agentId: string }).agentId), item, `${url}: ${(agent as { agentId: string }).agentId}'s last item is the GET's`)
      }
    }
  })
}
