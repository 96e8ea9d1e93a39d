-- Each conversation as the routes' lists show it, kept on its row as JSON text.
--
-- Why: on a busy view (about 21 conversations) building every conversation's
-- JSON object and looking its skill names up took two thirds of PostgreSQL's
-- time for a request (BENCHMARKS.md, step 14). The part of a list item that
-- does not change with the clock (firstName, lastName, skills, startTime,
-- conversationId, source, profImage: the contract's fields, in its order) is
-- now built when the conversation or its skills change, not on every read; a
-- read appends the durations and the closing brace.
--
-- Writers do not write list_item_head: a BEFORE trigger builds it from the row
-- and the names of the skills in skill_ids (which migration 002's triggers keep
-- equal to conversation_skills), and renaming a skill rebuilds the conversations
-- that need it. Closed conversations, which no list shows, have none: history
-- stays as wide as it was, and writers pay for a head only while it can be shown.

ALTER TABLE conversations ADD COLUMN list_item_head text;

-- '{"firstName":…,"profImage":"…"' without the closing brace.
CREATE FUNCTION conversation_list_item_head (c conversations) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT '{"firstName":' || to_json(c.customer_first_name)::text
      || ',"lastName":' || to_json(c.customer_last_name)::text
      || ',"skills":' || coalesce((
           SELECT json_agg(json_build_object('id', s.id, 'name', s.name) ORDER BY s.name, s.id)::text
           FROM skills s
           WHERE s.stream_id = c.stream_id AND s.id = ANY (c.skill_ids)), '[]')
      || ',"startTime":"' || to_char(c.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"'
      || ',"conversationId":' || to_json(c.id)::text
      || ',"source":' || to_json(c.source)::text
      || ',"profImage":' || to_json(coalesce(nullif(c.customer_prof_image, ''), 'no-avatar'))::text
$$;

UPDATE conversations c SET list_item_head = conversation_list_item_head(c) WHERE c.status <> 'closed';
ALTER TABLE conversations ADD CONSTRAINT conversations_open_have_list_item_head
  CHECK ((status = 'closed') = (list_item_head IS NULL));

CREATE FUNCTION conversations_list_item_head () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.list_item_head := CASE WHEN NEW.status = 'closed' THEN NULL ELSE conversation_list_item_head(NEW) END;
  RETURN NEW;
END
$$;

CREATE TRIGGER conversations_list_item_head_on_insert
BEFORE INSERT ON conversations
FOR EACH ROW EXECUTE FUNCTION conversations_list_item_head();

-- Only updates that change what it shows, or whether it is shown, rebuild it:
-- accepting a conversation or counting replies does not.
CREATE TRIGGER conversations_list_item_head_on_update
BEFORE UPDATE ON conversations
FOR EACH ROW
WHEN (OLD.id IS DISTINCT FROM NEW.id
   OR OLD.customer_first_name IS DISTINCT FROM NEW.customer_first_name
   OR OLD.customer_last_name IS DISTINCT FROM NEW.customer_last_name
   OR OLD.customer_prof_image IS DISTINCT FROM NEW.customer_prof_image
   OR OLD.started_at IS DISTINCT FROM NEW.started_at
   OR OLD.source IS DISTINCT FROM NEW.source
   OR OLD.skill_ids IS DISTINCT FROM NEW.skill_ids
   OR (OLD.status = 'closed') IS DISTINCT FROM (NEW.status = 'closed')
   OR OLD.list_item_head IS DISTINCT FROM NEW.list_item_head)
EXECUTE FUNCTION conversations_list_item_head();

-- A renamed skill: rebuild the open conversations that need it.
CREATE FUNCTION skills_renamed () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE conversations c SET list_item_head = conversation_list_item_head(c)
  WHERE c.stream_id = NEW.stream_id AND c.status <> 'closed' AND c.skill_ids @> ARRAY[NEW.id];
  RETURN NULL;
END
$$;

CREATE TRIGGER skills_renamed
AFTER UPDATE OF name ON skills
FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION skills_renamed();
