-- What changed, told to the gateways that listen: the live views (server-sent
-- events) recompute a view when something in it changed, instead of every view
-- on a timer. Writers change nothing in how they write: statement-level
-- triggers send, after each statement that changes what a view shows, one
-- NOTIFY per stream the statement touched, on the channel
-- fastify_active_conversations, with a JSON payload:
--
--   {"s": stream, "a": [agent ids], "g": [group ids], "u": true or false, "m": true or false}
--     a: agents whose own rows changed (the agent, its groups, its skills, its
--        conversations: its active list and its metrics)
--     g: groups whose queue changed (so their members' queues)
--     u: the stream's ungrouped queue changed (so every agent's queue)
--     m: group memberships changed (a group's floor gains or loses the agents in a)
--   {"s": stream, "all": true}
--     when that would pass NOTIFY's limit (8000 bytes): anything in the stream.
--
-- One notification per statement and stream however many rows (transition
-- tables); PostgreSQL delivers it at commit, once per distinct payload in a
-- transaction, and never for a rolled-back one. Conversation skills and skill
-- names need no trigger of their own: migrations 002 and 005 carry their
-- changes onto the conversations' rows, whose trigger tells. Groups' and
-- skills' own rows are not shown.
--
-- Nobody listening, nothing sent. NOTIFY costs writers (a commit-time queue
-- lock, the listener's wake-up): about a quarter of a writers' mix in
-- BENCHMARKS.md. Each listening gateway holds advisory lock 7264387126 shared
-- on its listening connection for as long as it listens (after LISTEN, before
-- reading the views it will keep fresh). A writer's statement first tries to
-- take that lock exclusively until its transaction ends: when it gets it, no
-- gateway listens, and none can start to before this transaction commits, so
-- the new listener's first read sees the change. When it does not get it (a
-- gateway listens, or another writer holds it at that instant), it notifies.
-- A notice sent for nobody costs a little and is never wrong.

-- Conversations: the agent who has it (active list, metrics); while queued,
-- its group's queue, or the stream's ungrouped queue. An update tells both
-- what the row was and what it is (queued in g1, then active with a1: both).
CREATE FUNCTION conversations_notify () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF pg_try_advisory_xact_lock(7264387126) THEN RETURN NULL; END IF;
  -- Each transition table is named only where it exists (INSERT has no old rows, DELETE no new ones).
  IF TG_OP = 'INSERT' THEN
    PERFORM pg_notify('fastify_active_conversations', CASE WHEN octet_length(n.p) > 7900 THEN json_build_object('s', n.s, 'all', true)::text ELSE n.p END)
    FROM (
      SELECT c.s, json_build_object('s', c.s,
               'a', coalesce(array_agg(DISTINCT c.a) FILTER (WHERE c.a IS NOT NULL), '{}'),
               'g', coalesce(array_agg(DISTINCT c.g) FILTER (WHERE c.g IS NOT NULL), '{}'),
               'u', coalesce(bool_or(c.u), false), 'm', false)::text AS p
      FROM (SELECT stream_id AS s, agent_id AS a, CASE WHEN status = 'queued' THEN agent_group_id END AS g,
                   status = 'queued' AND agent_group_id IS NULL AS u FROM new_rows) c
      GROUP BY c.s
    ) n;
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('fastify_active_conversations', CASE WHEN octet_length(n.p) > 7900 THEN json_build_object('s', n.s, 'all', true)::text ELSE n.p END)
    FROM (
      SELECT c.s, json_build_object('s', c.s,
               'a', coalesce(array_agg(DISTINCT c.a) FILTER (WHERE c.a IS NOT NULL), '{}'),
               'g', coalesce(array_agg(DISTINCT c.g) FILTER (WHERE c.g IS NOT NULL), '{}'),
               'u', coalesce(bool_or(c.u), false), 'm', false)::text AS p
      FROM (SELECT stream_id AS s, agent_id AS a, CASE WHEN status = 'queued' THEN agent_group_id END AS g,
                   status = 'queued' AND agent_group_id IS NULL AS u FROM old_rows) c
      GROUP BY c.s
    ) n;
  ELSE
    PERFORM pg_notify('fastify_active_conversations', CASE WHEN octet_length(n.p) > 7900 THEN json_build_object('s', n.s, 'all', true)::text ELSE n.p END)
    FROM (
      SELECT c.s, json_build_object('s', c.s,
               'a', coalesce(array_agg(DISTINCT c.a) FILTER (WHERE c.a IS NOT NULL), '{}'),
               'g', coalesce(array_agg(DISTINCT c.g) FILTER (WHERE c.g IS NOT NULL), '{}'),
               'u', coalesce(bool_or(c.u), false), 'm', false)::text AS p
      FROM (SELECT stream_id AS s, agent_id AS a, CASE WHEN status = 'queued' THEN agent_group_id END AS g,
                   status = 'queued' AND agent_group_id IS NULL AS u FROM new_rows
            UNION ALL
            SELECT stream_id, agent_id, CASE WHEN status = 'queued' THEN agent_group_id END,
                   status = 'queued' AND agent_group_id IS NULL FROM old_rows) c
      GROUP BY c.s
    ) n;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER conversations_notify_on_insert AFTER INSERT ON conversations
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION conversations_notify();
CREATE TRIGGER conversations_notify_on_update AFTER UPDATE ON conversations
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION conversations_notify();
CREATE TRIGGER conversations_notify_on_delete AFTER DELETE ON conversations
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION conversations_notify();

-- Agents, their memberships and their skills: the agents named (their names,
-- avatar and status; their groups, so their queues; their skills, so the
-- queue they may take; on a floor, a new or a gone agent). Memberships also
-- name the groups, whose floors gain or lose the agents (m).
-- One function for the three tables: each has stream_id, and the agent in
-- agent_id (id on agents); TG_TABLE_NAME tells them apart.
CREATE FUNCTION agents_notify () RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  membership constant boolean := TG_TABLE_NAME = 'agent_group_members';
BEGIN
  IF pg_try_advisory_xact_lock(7264387126) THEN RETURN NULL; END IF;
  IF TG_OP = 'INSERT' THEN
    PERFORM pg_notify('fastify_active_conversations', CASE WHEN octet_length(n.p) > 7900 THEN json_build_object('s', n.s, 'all', true)::text ELSE n.p END)
    FROM (
      SELECT c.s, json_build_object('s', c.s, 'a', array_agg(DISTINCT c.a),
               'g', coalesce(array_agg(DISTINCT c.g) FILTER (WHERE c.g IS NOT NULL), '{}'), 'u', false, 'm', membership)::text AS p
      FROM (SELECT r.stream_id AS s, r.agent AS a, r.agent_group AS g
            FROM (SELECT to_jsonb(new_rows) AS j FROM new_rows) x
            CROSS JOIN LATERAL (SELECT x.j->>'stream_id', coalesce(x.j->>'agent_id', x.j->>'id'), x.j->>'agent_group_id') r (stream_id, agent, agent_group)) c
      GROUP BY c.s
    ) n;
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('fastify_active_conversations', CASE WHEN octet_length(n.p) > 7900 THEN json_build_object('s', n.s, 'all', true)::text ELSE n.p END)
    FROM (
      SELECT c.s, json_build_object('s', c.s, 'a', array_agg(DISTINCT c.a),
               'g', coalesce(array_agg(DISTINCT c.g) FILTER (WHERE c.g IS NOT NULL), '{}'), 'u', false, 'm', membership)::text AS p
      FROM (SELECT r.stream_id AS s, r.agent AS a, r.agent_group AS g
            FROM (SELECT to_jsonb(old_rows) AS j FROM old_rows) x
            CROSS JOIN LATERAL (SELECT x.j->>'stream_id', coalesce(x.j->>'agent_id', x.j->>'id'), x.j->>'agent_group_id') r (stream_id, agent, agent_group)) c
      GROUP BY c.s
    ) n;
  ELSE
    PERFORM pg_notify('fastify_active_conversations', CASE WHEN octet_length(n.p) > 7900 THEN json_build_object('s', n.s, 'all', true)::text ELSE n.p END)
    FROM (
      SELECT c.s, json_build_object('s', c.s, 'a', array_agg(DISTINCT c.a),
               'g', coalesce(array_agg(DISTINCT c.g) FILTER (WHERE c.g IS NOT NULL), '{}'), 'u', false, 'm', membership)::text AS p
      FROM (SELECT r.stream_id AS s, r.agent AS a, r.agent_group AS g
            FROM (SELECT to_jsonb(new_rows) AS j FROM new_rows UNION ALL SELECT to_jsonb(old_rows) FROM old_rows) x
            CROSS JOIN LATERAL (SELECT x.j->>'stream_id', coalesce(x.j->>'agent_id', x.j->>'id'), x.j->>'agent_group_id') r (stream_id, agent, agent_group)) c
      GROUP BY c.s
    ) n;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER agents_notify_on_insert AFTER INSERT ON agents
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agents_notify();
CREATE TRIGGER agents_notify_on_update AFTER UPDATE ON agents
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agents_notify();
CREATE TRIGGER agents_notify_on_delete AFTER DELETE ON agents
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION agents_notify();

CREATE TRIGGER agent_group_members_notify_on_insert AFTER INSERT ON agent_group_members
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agents_notify();
CREATE TRIGGER agent_group_members_notify_on_update AFTER UPDATE ON agent_group_members
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agents_notify();
CREATE TRIGGER agent_group_members_notify_on_delete AFTER DELETE ON agent_group_members
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION agents_notify();

CREATE TRIGGER agent_skills_notify_on_insert AFTER INSERT ON agent_skills
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agents_notify();
CREATE TRIGGER agent_skills_notify_on_update AFTER UPDATE ON agent_skills
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agents_notify();
CREATE TRIGGER agent_skills_notify_on_delete AFTER DELETE ON agent_skills
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION agents_notify();
