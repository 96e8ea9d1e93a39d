-- The floor route pages through agents in byte order of their ids (keyset
-- paging on agent id COLLATE "C", the same order whatever the database's
-- collation). These indexes hand out that order directly: a page of a stream,
-- or of a group's members, is one index range, never a sort of the stream.
CREATE INDEX agents_in_id_byte_order ON agents (stream_id, id COLLATE "C");
CREATE INDEX agent_group_members_in_agent_byte_order ON agent_group_members (stream_id, agent_group_id, agent_id COLLATE "C");
