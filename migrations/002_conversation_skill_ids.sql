-- Each conversation's needed skill ids, kept on the conversation row.
--
-- Why: the request path decides for every queued conversation of an agent's
-- groups whether the agent has the skills it needs. Reading them from
-- conversation_skills took one index descent per candidate, about 40 % of the
-- buffers a request touched; from the row already fetched it takes none.
--
-- conversation_skills stays the table writers write (with its foreign keys);
-- the triggers below keep conversations.skill_ids equal to it in the same
-- transaction. They apply array_append/array_remove to the row they update, so
-- two transactions adding skills to one conversation at once both land (the
-- second UPDATE waits for the first and re-applies to its result). Writers do
-- not write skill_ids themselves.

ALTER TABLE conversations ADD COLUMN skill_ids text[] NOT NULL DEFAULT '{}';

UPDATE conversations c
SET skill_ids = needed.skill_ids
FROM (
  SELECT stream_id, conversation_id, array_agg(skill_id ORDER BY skill_id) AS skill_ids
  FROM conversation_skills
  GROUP BY stream_id, conversation_id
) needed
WHERE c.stream_id = needed.stream_id AND c.id = needed.conversation_id;

CREATE FUNCTION conversation_skills_to_skill_ids () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE conversations SET skill_ids = array_remove(skill_ids, OLD.skill_id)
    WHERE stream_id = OLD.stream_id AND id = OLD.conversation_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE conversations SET skill_ids = array_append(skill_ids, NEW.skill_id)
    WHERE stream_id = NEW.stream_id AND id = NEW.conversation_id;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER conversation_skills_to_skill_ids
AFTER INSERT OR UPDATE OR DELETE ON conversation_skills
FOR EACH ROW EXECUTE FUNCTION conversation_skills_to_skill_ids();

CREATE FUNCTION conversation_skills_truncated () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE conversations SET skill_ids = '{}' WHERE skill_ids <> '{}';
  RETURN NULL;
END
$$;

CREATE TRIGGER conversation_skills_truncated
AFTER TRUNCATE ON conversation_skills
FOR EACH STATEMENT EXECUTE FUNCTION conversation_skills_truncated();
