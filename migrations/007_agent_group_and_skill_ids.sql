-- Each agent's group ids and skill ids, kept on the agent row.
--
-- Why: every view starts from the agent's groups (its queue, a group-scoped
-- token's visibility) and its skills (which queued conversations it may take).
-- Reading them took two index ranges and two aggregates per agent, on top of
-- the agent row already fetched: about a sixth of PostgreSQL's work for a
-- light view (BENCHMARKS.md, step 20). From the agent row they cost nothing.
--
-- agent_group_members and agent_skills stay the tables writers write (with
-- their foreign keys); the triggers below keep agents.group_ids and
-- agents.skill_ids equal to them in the same transaction, as migration 002
-- does for conversations.skill_ids: array_append/array_remove on the row they
-- update, so two transactions changing one agent's groups or skills at once
-- both land (the second UPDATE waits for the first and re-applies to its
-- result). Writers do not write these columns themselves. The order of the
-- ids carries no meaning.
--
-- Each such UPDATE of agents also fires migration 006's agents_notify while a
-- gateway listens: one more notice naming an agent that the membership's or
-- skill's notice names already (the hub coalesces them into one refresh).

ALTER TABLE agents
  ADD COLUMN group_ids text[] NOT NULL DEFAULT '{}',
  ADD COLUMN skill_ids text[] NOT NULL DEFAULT '{}';

UPDATE agents a
SET group_ids = coalesce((SELECT array_agg(gm.agent_group_id ORDER BY gm.agent_group_id)
                          FROM agent_group_members gm
                          WHERE gm.stream_id = a.stream_id AND gm.agent_id = a.id), '{}'),
    skill_ids = coalesce((SELECT array_agg(sk.skill_id ORDER BY sk.skill_id)
                          FROM agent_skills sk
                          WHERE sk.stream_id = a.stream_id AND sk.agent_id = a.id), '{}')
WHERE EXISTS (SELECT FROM agent_group_members gm WHERE gm.stream_id = a.stream_id AND gm.agent_id = a.id)
   OR EXISTS (SELECT FROM agent_skills sk WHERE sk.stream_id = a.stream_id AND sk.agent_id = a.id);

CREATE FUNCTION agent_group_members_to_group_ids () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE agents SET group_ids = array_remove(group_ids, OLD.agent_group_id)
    WHERE stream_id = OLD.stream_id AND id = OLD.agent_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE agents SET group_ids = array_append(group_ids, NEW.agent_group_id)
    WHERE stream_id = NEW.stream_id AND id = NEW.agent_id;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER agent_group_members_to_group_ids
AFTER INSERT OR UPDATE OR DELETE ON agent_group_members
FOR EACH ROW EXECUTE FUNCTION agent_group_members_to_group_ids();

CREATE FUNCTION agent_skills_to_skill_ids () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE agents SET skill_ids = array_remove(skill_ids, OLD.skill_id)
    WHERE stream_id = OLD.stream_id AND id = OLD.agent_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE agents SET skill_ids = array_append(skill_ids, NEW.skill_id)
    WHERE stream_id = NEW.stream_id AND id = NEW.agent_id;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER agent_skills_to_skill_ids
AFTER INSERT OR UPDATE OR DELETE ON agent_skills
FOR EACH ROW EXECUTE FUNCTION agent_skills_to_skill_ids();

CREATE FUNCTION agent_memberships_truncated () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'agent_group_members' THEN
    UPDATE agents SET group_ids = '{}' WHERE group_ids <> '{}';
  ELSE
    UPDATE agents SET skill_ids = '{}' WHERE skill_ids <> '{}';
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER agent_group_members_truncated
AFTER TRUNCATE ON agent_group_members
FOR EACH STATEMENT EXECUTE FUNCTION agent_memberships_truncated();

CREATE TRIGGER agent_skills_truncated
AFTER TRUNCATE ON agent_skills
FOR EACH STATEMENT EXECUTE FUNCTION agent_memberships_truncated();
