import type pg from 'pg'

export const DEMO_STREAM_ID = 'st-606c43de5e00ca5f4e27e38a'
export const DEMO_AGENT_ID = 'a-1234'
/** A second stream with the same ids, to show that streams never mix. */
export const OTHER_STREAM_ID = 'st-0therstream000000000000'

/*
 * A deterministic demo: the same rows every time, with times relative to the
 * database clock so that the durations read like a live contact center.
 * Amanda (a-1234, Sales group, skills Sales and Billing) is handling two
 * conversations; the queue holds five, of which she can take three. Sales
 * answered its four of the last day within 20 s; Support lost a call.
 */
// Constants only, no input: the stream ids are written out (DEMO_STREAM_ID, OTHER_STREAM_ID).
const DEMO_SQL = `
DELETE FROM conversation_skills WHERE stream_id IN ('st-606c43de5e00ca5f4e27e38a', 'st-0therstream000000000000');
DELETE FROM conversations       WHERE stream_id IN ('st-606c43de5e00ca5f4e27e38a', 'st-0therstream000000000000');
DELETE FROM agent_skills        WHERE stream_id IN ('st-606c43de5e00ca5f4e27e38a', 'st-0therstream000000000000');
DELETE FROM agent_group_members WHERE stream_id IN ('st-606c43de5e00ca5f4e27e38a', 'st-0therstream000000000000');
DELETE FROM skills              WHERE stream_id IN ('st-606c43de5e00ca5f4e27e38a', 'st-0therstream000000000000');
DELETE FROM agent_groups        WHERE stream_id IN ('st-606c43de5e00ca5f4e27e38a', 'st-0therstream000000000000');
DELETE FROM agents              WHERE stream_id IN ('st-606c43de5e00ca5f4e27e38a', 'st-0therstream000000000000');

INSERT INTO agents (stream_id, id, first_name, last_name, prof_image, online_status) VALUES
  ('st-606c43de5e00ca5f4e27e38a', 'a-1234', 'Amanda', 'Jones', 'https://example.com/avatars/amanda-jones.png', 'available'),
  ('st-606c43de5e00ca5f4e27e38a', 'a-2345', 'Brian',  'Smith', NULL, 'busy'),
  ('st-606c43de5e00ca5f4e27e38a', 'a-3456', 'Chen',   'Wei',   NULL, 'away'),
  ('st-0therstream000000000000', 'a-1234', 'Other',  'Tenant', NULL, 'offline');

INSERT INTO agent_groups (stream_id, id, name) VALUES
  ('st-606c43de5e00ca5f4e27e38a', 'ag-1234', 'Sales'), ('st-606c43de5e00ca5f4e27e38a', 'ag-5678', 'Support'), ('st-0therstream000000000000', 'ag-1234', 'Other tenant');
INSERT INTO agent_group_members (stream_id, agent_group_id, agent_id) VALUES
  ('st-606c43de5e00ca5f4e27e38a', 'ag-1234', 'a-1234'), ('st-606c43de5e00ca5f4e27e38a', 'ag-5678', 'a-2345'), ('st-606c43de5e00ca5f4e27e38a', 'ag-1234', 'a-3456'), ('st-606c43de5e00ca5f4e27e38a', 'ag-5678', 'a-3456'),
  ('st-0therstream000000000000', 'ag-1234', 'a-1234');

INSERT INTO skills (stream_id, id, name) VALUES
  ('st-606c43de5e00ca5f4e27e38a', 's-21223123', 'Sales'), ('st-606c43de5e00ca5f4e27e38a', 's-31337', 'Billing'), ('st-606c43de5e00ca5f4e27e38a', 's-4242', 'Spanish'), ('st-0therstream000000000000', 's-21223123', 'Other');
INSERT INTO agent_skills (stream_id, agent_id, skill_id) VALUES
  ('st-606c43de5e00ca5f4e27e38a', 'a-1234', 's-21223123'), ('st-606c43de5e00ca5f4e27e38a', 'a-1234', 's-31337'),
  ('st-606c43de5e00ca5f4e27e38a', 'a-2345', 's-31337'), ('st-606c43de5e00ca5f4e27e38a', 'a-2345', 's-4242'),
  ('st-606c43de5e00ca5f4e27e38a', 'a-3456', 's-21223123'), ('st-606c43de5e00ca5f4e27e38a', 'a-3456', 's-4242');

-- (id, source, status, customer, group, agent, minutes ago: started, queued, accepted, first response, closed; replies: seconds, count)
INSERT INTO conversations (stream_id, id, source, status, customer_first_name, customer_last_name, customer_prof_image,
                           agent_group_id, agent_id, started_at, queued_at, accepted_at, first_response_at, closed_at,
                           response_seconds_total, response_count)
SELECT 'st-606c43de5e00ca5f4e27e38a', id, source, status, first_name, last_name, prof_image, agent_group_id, agent_id,
       now() - make_interval(secs => started), now() - make_interval(secs => queued),
       now() - make_interval(secs => accepted), now() - make_interval(secs => first_response),
       now() - make_interval(secs => closed), reply_seconds, replies
FROM (VALUES
  ('c-1233', 'call', 'active', 'Maria',  'Garcia', NULL, 'ag-1234', 'a-1234', 1090, 1035, 1020, 1000, NULL, 60.0, 2),
  ('c-1240', 'chat', 'active', 'John',   'Doe',    'https://example.com/avatars/john-doe.png', 'ag-1234', 'a-1234', 400, 310, 300, 290, NULL, 25.0, 1),
  ('c-1250', 'chat', 'queued', 'Aiko',   'Tanaka', NULL, 'ag-1234', NULL, 125, 120, NULL, NULL, NULL, 0.0, 0),
  ('c-1251', 'call', 'queued', 'Luis',   'Moreno', NULL, 'ag-1234', NULL, 70, 65, NULL, NULL, NULL, 0.0, 0),
  ('c-1252', 'chat', 'queued', 'Emma',   'Brown',  NULL, NULL,      NULL, 45, 40, NULL, NULL, NULL, 0.0, 0),
  ('c-1253', 'chat', 'queued', 'Sofia',  'Rossi',  NULL, 'ag-1234', NULL, 200, 190, NULL, NULL, NULL, 0.0, 0),
  ('c-1254', 'call', 'queued', 'Noah',   'Klein',  NULL, 'ag-5678', NULL, 300, 290, NULL, NULL, NULL, 0.0, 0),
  ('c-1100', 'chat', 'closed', 'Olivia', 'White',  NULL, 'ag-1234', 'a-1234', 7300, 7212, 7200, 7150, 7100, 150.0, 3),
  ('c-1101', 'call', 'closed', 'Liam',   'Green',  NULL, 'ag-1234', 'a-1234', 3700, 3615, 3600, 3550, 3510, 40.0, 1),
  ('c-1102', 'chat', 'closed', 'Ava',    'Black',  NULL, NULL,      'a-1234', 200000, 199990, 199900, 199800, 199000, 900.0, 2),
  ('c-1103', 'call', 'closed', 'Mia',    'Fischer', NULL, 'ag-5678', NULL,    960, 950, NULL, NULL, 880, 0.0, 0)
) AS c (id, source, status, first_name, last_name, prof_image, agent_group_id, agent_id,
        started, queued, accepted, first_response, closed, reply_seconds, replies);

INSERT INTO conversation_skills (stream_id, conversation_id, skill_id) VALUES
  ('st-606c43de5e00ca5f4e27e38a', 'c-1233', 's-21223123'), ('st-606c43de5e00ca5f4e27e38a', 'c-1240', 's-31337'),
  ('st-606c43de5e00ca5f4e27e38a', 'c-1250', 's-21223123'), ('st-606c43de5e00ca5f4e27e38a', 'c-1251', 's-21223123'), ('st-606c43de5e00ca5f4e27e38a', 'c-1251', 's-31337'),
  ('st-606c43de5e00ca5f4e27e38a', 'c-1253', 's-4242'), ('st-606c43de5e00ca5f4e27e38a', 'c-1254', 's-31337');
`

/** Replaces the demo streams' rows with the demo data set, in one transaction. */
export async function seedDemo (pool: pg.Pool): Promise<void> {
  // A multi-statement text runs as one implicit transaction (simple query protocol).
  await pool.query(DEMO_SQL)
}
