-- Where the live views learn what changed: logical decoding of the write-ahead
-- log, replacing migration 006's NOTIFY triggers.
--
-- Why: NOTIFY cost the writers. A notifying commit takes a global lock so that
-- queue entries appear in commit order, serializing every such commit on the
-- instance, and 006's gate made each writer's transaction hold an advisory
-- lock through its WAL flush even while nobody listened: with durable commits
-- the writers' mix ran at 0.68 of its rate with a gateway listening and 0.82
-- with none (BENCHMARKS.md, "What NOTIFY cost the writers"). The WAL is
-- written anyway; a gateway decodes it (pgoutput, a temporary slot: see
-- lib/live/wal.ts) and no writer's statement runs anything for push.
--
-- The publication names the tables whose rows the views show: an agent (its
-- row carries its groups and skills, migration 007), its memberships, its
-- skills (their deletes name the agent), groups (the queue metrics' names),
-- and conversations (migrations 002 and 005 carry skill changes onto their
-- rows). Truncation is published too: it refreshes every view.
--
-- Old values. pgoutput sends an updated or deleted row's old values only for
-- its replica identity. The key of agents, agent_groups, agent_group_members
-- and agent_skills names everything a change needs (stream, agent, group).
-- A conversation's key does not: moved from agent A to B, or out of a group's
-- queue, its old agent and group would be lost, so conversations log their
-- whole old row (REPLICA IDENTITY FULL): 18 to 22 % more WAL per
-- conversation's life and no measurable cost to the writers' rate
-- (BENCHMARKS.md, "What REPLICA IDENTITY FULL would cost writers").
--
-- Triggers of 002, 005 and 007 stay: they keep the read path cheap.

DROP TRIGGER conversations_notify_on_insert ON conversations;
DROP TRIGGER conversations_notify_on_update ON conversations;
DROP TRIGGER conversations_notify_on_delete ON conversations;
DROP TRIGGER agents_notify_on_insert ON agents;
DROP TRIGGER agents_notify_on_update ON agents;
DROP TRIGGER agents_notify_on_delete ON agents;
DROP TRIGGER agent_group_members_notify_on_insert ON agent_group_members;
DROP TRIGGER agent_group_members_notify_on_update ON agent_group_members;
DROP TRIGGER agent_group_members_notify_on_delete ON agent_group_members;
DROP TRIGGER agent_skills_notify_on_insert ON agent_skills;
DROP TRIGGER agent_skills_notify_on_update ON agent_skills;
DROP TRIGGER agent_skills_notify_on_delete ON agent_skills;
DROP FUNCTION conversations_notify();
DROP FUNCTION agents_notify();

ALTER TABLE conversations REPLICA IDENTITY FULL;

CREATE PUBLICATION fastify_active_conversations
FOR TABLE agents, agent_groups, agent_group_members, agent_skills, conversations;
