-- The tables the contact-center systems write and the plugin reads.
--
-- Tenancy: every table carries stream_id, and every key, foreign key and join
-- includes it, so rows of two streams can never meet (and the tables can be
-- distributed by stream_id should they outgrow one server).
--
-- Writers only need the columns below; any column added later will have a
-- default or be nullable.

CREATE TABLE agents (
  stream_id     text NOT NULL,
  id            text NOT NULL,
  first_name    text NOT NULL,
  last_name     text NOT NULL,
  prof_image    text,                       -- URL; NULL means "no-avatar"
  online_status text NOT NULL DEFAULT 'offline'
                CHECK (online_status IN ('available', 'busy', 'away', 'offline')),
  PRIMARY KEY (stream_id, id)
);

CREATE TABLE agent_groups (
  stream_id text NOT NULL,
  id        text NOT NULL,
  name      text NOT NULL,
  PRIMARY KEY (stream_id, id)
);

CREATE TABLE agent_group_members (
  stream_id      text NOT NULL,
  agent_group_id text NOT NULL,
  agent_id       text NOT NULL,
  PRIMARY KEY (stream_id, agent_group_id, agent_id),
  FOREIGN KEY (stream_id, agent_group_id) REFERENCES agent_groups (stream_id, id) ON DELETE CASCADE,
  FOREIGN KEY (stream_id, agent_id) REFERENCES agents (stream_id, id) ON DELETE CASCADE
);
-- The groups of one agent (queue eligibility, group-scoped tokens).
CREATE INDEX agent_group_members_by_agent ON agent_group_members (stream_id, agent_id, agent_group_id);

CREATE TABLE skills (
  stream_id text NOT NULL,
  id        text NOT NULL,
  name      text NOT NULL,
  PRIMARY KEY (stream_id, id)
);

-- The primary key serves "does this agent have that skill".
CREATE TABLE agent_skills (
  stream_id text NOT NULL,
  agent_id  text NOT NULL,
  skill_id  text NOT NULL,
  PRIMARY KEY (stream_id, agent_id, skill_id),
  FOREIGN KEY (stream_id, agent_id) REFERENCES agents (stream_id, id) ON DELETE CASCADE,
  FOREIGN KEY (stream_id, skill_id) REFERENCES skills (stream_id, id) ON DELETE CASCADE
);

CREATE TABLE conversations (
  stream_id              text NOT NULL,
  id                     text NOT NULL,
  source                 text NOT NULL CHECK (source IN ('chat', 'call')),
  status                 text NOT NULL CHECK (status IN ('queued', 'active', 'closed')),
  customer_first_name    text NOT NULL,
  customer_last_name     text NOT NULL,
  customer_prof_image    text,              -- URL; NULL means "no-avatar"
  agent_group_id         text,              -- NULL: routed to no group, any agent may take it
  agent_id               text,              -- the agent who accepted it
  started_at             timestamptz NOT NULL,
  queued_at              timestamptz NOT NULL,
  accepted_at            timestamptz,
  first_response_at      timestamptz,
  closed_at              timestamptz,
  -- The agent's replies: seconds taken to answer customer messages, summed, and how many.
  response_seconds_total double precision NOT NULL DEFAULT 0 CHECK (response_seconds_total >= 0),
  response_count         integer NOT NULL DEFAULT 0 CHECK (response_count >= 0),
  PRIMARY KEY (stream_id, id),
  FOREIGN KEY (stream_id, agent_group_id) REFERENCES agent_groups (stream_id, id),
  FOREIGN KEY (stream_id, agent_id) REFERENCES agents (stream_id, id),
  -- Each status has the facts it implies.
  CONSTRAINT conversations_queued_is_open CHECK (status <> 'queued' OR closed_at IS NULL),
  CONSTRAINT conversations_active_is_accepted
    CHECK (status <> 'active' OR (agent_id IS NOT NULL AND accepted_at IS NOT NULL AND closed_at IS NULL)),
  CONSTRAINT conversations_closed_has_closed_at CHECK (status <> 'closed' OR closed_at IS NOT NULL),
  CONSTRAINT conversations_accepted_has_agent CHECK (accepted_at IS NULL OR agent_id IS NOT NULL),
  -- Timestamps in order: started <= queued <= accepted <= first response, accepted <= closed.
  CONSTRAINT conversations_timestamps_in_order CHECK (
        queued_at >= started_at
    AND (accepted_at IS NULL OR accepted_at >= queued_at)
    AND (first_response_at IS NULL OR (accepted_at IS NOT NULL AND first_response_at >= accepted_at))
    AND (closed_at IS NULL OR closed_at >= queued_at)
    AND (closed_at IS NULL OR accepted_at IS NULL OR closed_at >= accepted_at)
  )
);

-- The request path's three reads, each one index range:
-- the conversations an agent is handling now,
CREATE INDEX conversations_active_by_agent ON conversations (stream_id, agent_id, started_at)
  WHERE status = 'active';
-- the queue of a group (agent_group_id NULL included: btree indexes NULLs),
CREATE INDEX conversations_queued_by_group ON conversations (stream_id, agent_group_id, queued_at)
  WHERE status = 'queued';
-- and the agent's recently accepted conversations, with what the metrics need
-- so that the metrics can be read from the index alone.
CREATE INDEX conversations_accepted_by_agent ON conversations (stream_id, agent_id, accepted_at)
  INCLUDE (closed_at, first_response_at, response_seconds_total, response_count)
  WHERE accepted_at IS NOT NULL;

CREATE TABLE conversation_skills (
  stream_id       text NOT NULL,
  conversation_id text NOT NULL,
  skill_id        text NOT NULL,
  PRIMARY KEY (stream_id, conversation_id, skill_id),
  FOREIGN KEY (stream_id, conversation_id) REFERENCES conversations (stream_id, id) ON DELETE CASCADE,
  FOREIGN KEY (stream_id, skill_id) REFERENCES skills (stream_id, id)
);
