import type pg from 'pg'
import { insertConversations, insertStream } from './rows.js'

export const STREAM = 'st-main'
export const OTHER_STREAM = 'st-other'

/*
 * A small contact center with known answers.
 *
 * Stream st-main: groups g1 g2 g3, skills sk1 sk2 sk3.
 *   a1 Ann Lee (groups g1 g2, skills sk1 sk2): three active conversations, three
 *      closed in the last 24 h and one older; seven queued conversations of which
 *      four are hers to take.
 *   a2 (group g3, skill sk3): one active conversation.
 *   a3 "Solo" with an empty last name, no image, no conversations.
 * Stream st-other reuses the ids a1, g1, sk1 with rows of its own that must
 * never show in st-main, and a-only-other exists only there.
 */
export async function seedWorld (pool: pg.Pool): Promise<void> {
  await insertStream(pool, STREAM, {
    groups: ['g1', 'g2', 'g3'],
    skills: ['sk1', 'sk2', 'sk3'],
    agents: [
      { id: 'a1', name: ['Ann', 'Lee'], image: 'https://img.example/ann.png', status: 'busy', groups: ['g1', 'g2'], skills: ['sk1', 'sk2'] },
      { id: 'a2', groups: ['g3'], skills: ['sk3'] },
      { id: 'a3', name: ['Solo', ''], status: 'offline' }
    ]
  })
  await insertConversations(pool, STREAM, [
    // a1's active conversations (oldest start first: act-3, act-1, act-2)
    { id: 'act-1', status: 'active', source: 'call', group: 'g1', agent: 'a1', started: 600, queued: 590, accepted: 500, firstResponse: 490, replySeconds: 20, replies: 2, customer: ['Maria', 'Garcia'], image: 'https://img.example/maria.png', skills: ['sk1', 'sk2'] },
    { id: 'act-2', status: 'active', group: 'g2', agent: 'a1', started: 300, queued: 250, accepted: 100 },
    { id: 'act-3', status: 'active', group: null, agent: 'a1', started: 900, queued: 880, accepted: 870 },
    { id: 'act-a2', status: 'active', group: 'g3', agent: 'a2', started: 100, queued: 90, accepted: 80 },
    // a1's closed conversations in the window: resolution 1200, 600, 100; first response 100, 30
    { id: 'cl-1', status: 'closed', group: 'g1', agent: 'a1', started: 7300, queued: 7250, accepted: 7200, firstResponse: 7100, closed: 6000, replySeconds: 300, replies: 4 },
    { id: 'cl-2', status: 'closed', group: 'g2', agent: 'a1', started: 3700, queued: 3650, accepted: 3600, firstResponse: 3570, closed: 3000, replySeconds: 50, replies: 1 },
    { id: 'cl-3', status: 'closed', group: 'g1', agent: 'a1', started: 1900, queued: 1850, accepted: 1800, closed: 1700 },
    // accepted 25 hours ago: outside the default 24-hour window
    { id: 'cl-old', status: 'closed', group: 'g1', agent: 'a1', started: 90100, queued: 90050, accepted: 90000, firstResponse: 89990, closed: 89000, replySeconds: 1000, replies: 1 },
    // the queue: a1 may take q-1, q-7, q-3, q-2 (longest waiting first)
    { id: 'q-1', status: 'queued', group: 'g1', started: 410, queued: 400, skills: ['sk1'] },
    { id: 'q-2', status: 'queued', group: null, started: 55, queued: 50 },
    { id: 'q-3', status: 'queued', group: 'g2', started: 210, queued: 200, skills: ['sk1', 'sk2'] },
    { id: 'q-4', status: 'queued', group: 'g1', started: 510, queued: 500, skills: ['sk3'] }, // lacks sk3
    { id: 'q-5', status: 'queued', group: 'g3', started: 610, queued: 600 }, // not her group
    { id: 'q-6', status: 'queued', group: 'g1', started: 710, queued: 700, skills: ['sk1', 'sk3'] }, // lacks sk3
    { id: 'q-7', status: 'queued', source: 'call', group: null, started: 310, queued: 300, skills: ['sk2'] }
  ])

  await insertStream(pool, OTHER_STREAM, {
    groups: ['g1'],
    skills: ['sk1'],
    agents: [
      { id: 'a1', name: ['Other', 'Tenant'], groups: ['g1'], skills: ['sk1'] },
      { id: 'a-only-other', groups: ['g1'] }
    ]
  })
  await insertConversations(pool, OTHER_STREAM, [
    { id: 'act-1', status: 'active', group: 'g1', agent: 'a1', started: 50, queued: 40, accepted: 30 },
    { id: 'o-act', status: 'active', group: 'g1', agent: 'a1', started: 50, queued: 40, accepted: 30 },
    { id: 'o-q', status: 'queued', group: 'g1', started: 20, queued: 10, skills: ['sk1'] },
    { id: 'o-cl', status: 'closed', group: 'g1', agent: 'a1', started: 500, queued: 400, accepted: 300, firstResponse: 1, closed: 2, replySeconds: 1, replies: 1 }
  ])
}
