import type { Row, WalCommit } from './wal.js'

/** The publication of migration 009. */
export const PUBLICATION = 'fastify_active_conversations'

/** What one committed transaction changed in one stream, as the hub routes it to the views. */
export interface Change {
  s: string
  /** Agents whose own rows changed (the agent, its groups, its skills, its conversations: its active list and metrics). */
  a: string[]
  /** Groups whose queue changed (so their members' queues). */
  g: string[]
  /** The stream's ungrouped queue changed (so every agent's queue). */
  u: boolean
  /** The transaction, to wait until a new snapshot sees it (lib/sql/visibility.ts). */
  xid: number
  /** Its commit time (ms since the epoch, PostgreSQL's clock). */
  committedAt: number
}

/** The columns changesOf reads: the WAL client decodes these alone. */
export const CHANGE_COLUMNS: ReadonlySet<string> = new Set(['stream_id', 'id', 'agent_id', 'agent_group_id', 'status'])

/** A truncation's stream: every view of every stream. */
export const EVERY_STREAM = '*'

/**
 * The streams a committed transaction touched, and in each what its views
 * show of it. A conversation tells its agent (active list, metrics) and, while
 * queued, its group's queue or the ungrouped one; an update tells both what
 * the row was and what it is (queued in g1, then active with a1: both), which
 * is why conversations log their old rows (migration 009). Agents,
 * memberships and skills tell the agent; memberships also the group, whose
 * floor gains or loses it. A group's own row changes no agent's view, but
 * its stream's queue metrics (their names).
 */
export function changesOf (commit: WalCommit): Change[] {
  const byStream = new Map<string, { a: Set<string>, g: Set<string>, u: boolean }>()
  const of = (row: Row) => {
    const streamId = row.stream_id as string
    let entry = byStream.get(streamId)
    if (entry === undefined) byStream.set(streamId, entry = { a: new Set(), g: new Set(), u: false })
    return entry
  }
  const tell = (table: string, row: Row): void => {
    const entry = of(row)
    switch (table) {
      case 'conversations':
        if (row.agent_id != null) entry.a.add(row.agent_id)
        if (row.status === 'queued') {
          if (row.agent_group_id != null) entry.g.add(row.agent_group_id)
          else entry.u = true
        }
        break
      case 'agents':
        entry.a.add(row.id as string)
        break
      case 'agent_group_members':
        entry.a.add(row.agent_id as string)
        entry.g.add(row.agent_group_id as string)
        break
      case 'agent_skills':
        entry.a.add(row.agent_id as string)
        break
      default: // agent_groups: the stream's metrics watches read again on any change of it
    }
  }
  for (const change of commit.changes) {
    if (change.kind === 'truncate') return [{ s: EVERY_STREAM, a: [], g: [], u: false, xid: commit.xid, committedAt: commit.commitTime }]
    if (change.kind !== 'delete') tell(change.table, change.row)
    if (change.kind !== 'insert' && change.old !== null) tell(change.table, change.old)
  }
  return [...byStream].map(([s, { a, g, u }]) => ({ s, a: [...a], g: [...g], u, xid: commit.xid, committedAt: commit.commitTime }))
}
