-- The AI backfill's Batch API mode (AI_BATCH_API): an event's large backlog
-- goes to the provider as one batch, which answers within a day. The batch's
-- ID is kept here as well as in the backfill workflow's state, so that
-- neither a worker crash nor a lost workflow submits (and pays for) the
-- same pairs twice: an event has at most one open batch, and the backfill
-- polls it until its answers are collected.
CREATE TABLE matchmaking_ai_batches (
    event_id     uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    batch_id     text NOT NULL,
    requests     integer NOT NULL,
    -- The newest list write (matches.updated_at) the batch was built from:
    -- lists written after it are not in the batch, and the backfill serves
    -- them live while the batch runs.
    lists_up_to  timestamptz NOT NULL,
    submitted_at timestamptz NOT NULL DEFAULT now(),
    -- Set when the answers were validated, cached and counted; the counts
    -- are what collecting found: answers cached, answers refused by
    -- validation, lines the batch failed, and answers for pairs no longer
    -- awaiting one (list rewritten, profile edited).
    collected_at timestamptz,
    answered     integer,
    refused      integer,
    failed       integer,
    stale        integer,
    PRIMARY KEY (event_id, batch_id)
);

CREATE UNIQUE INDEX matchmaking_ai_batches_open ON matchmaking_ai_batches (event_id) WHERE collected_at IS NULL;

-- As 007 does for every engine table: no privilege for PUBLIC (or
-- Supabase's API roles), row level security with the worker's policy only
-- (starter grant-worker adds it).
DO $$
DECLARE
    api_roles text := (
        SELECT string_agg(quote_ident(rolname), ', ' ORDER BY rolname)
        FROM pg_roles WHERE rolname IN ('anon', 'authenticated'));
    grantees text := 'PUBLIC' || coalesce(', ' || api_roles, '');
BEGIN
    EXECUTE format('REVOKE ALL ON TABLE public.matchmaking_ai_batches FROM %s', grantees);
    ALTER TABLE public.matchmaking_ai_batches ENABLE ROW LEVEL SECURITY;
END;
$$;
