-- The agent-groups metrics route reads each group's queue figures from these,
-- one index range per group (and per the ungrouped queue: btree indexes NULLs),
-- never the stream's conversations:
--
-- the conversations handled now, by group (the agents' own index is by agent),
CREATE INDEX conversations_active_by_group ON conversations (stream_id, agent_group_id)
  INCLUDE (source) WHERE status = 'active';
-- and every conversation of a group by when it was queued, with what the
-- metrics window's cohort needs (answered, abandoned, speed of answer, service
-- level, handle time), so that the cohort is read from the index alone.
-- What waits comes from conversations_queued_by_group (migration 001).
-- Their size and their cost to writers are in BENCHMARKS.md.
CREATE INDEX conversations_by_group_queued ON conversations (stream_id, agent_group_id, queued_at)
  INCLUDE (source, accepted_at, closed_at);
