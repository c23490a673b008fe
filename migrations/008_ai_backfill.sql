-- AI insights follow a list rather than hold up its commit: a batch commits
-- with fallback insights, and each event's backfill workflow upgrades them
-- to AI text afterwards, newest lists first (see activities/backfill.go).

-- What the backfill found and spent per event, so that the budget
-- (AI_MAX_CALLS_PER_EVENT) holds across workflow runs, worker restarts and
-- re-enabling the event.
CREATE TABLE matchmaking_ai_backfill (
    event_id          uuid PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    calls             bigint NOT NULL DEFAULT 0,
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    upgraded          bigint NOT NULL DEFAULT 0,
    -- AI answers not written because the pair's list was rewritten, or a
    -- profile of the pair edited, between selection and write.
    fenced            bigint NOT NULL DEFAULT 0,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Matches whose AI answer the model gave but validation refused (or that
-- the model refused): the backfill leaves them with the fallback instead of
-- asking again every round. A mark holds for one write of the list
-- (list_written_at is the match row's updated_at); a rewritten list is
-- asked again.
CREATE TABLE matchmaking_ai_skips (
    event_id        uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL,
    rank            smallint NOT NULL,
    matched_user_id uuid NOT NULL,
    list_written_at timestamptz NOT NULL,
    reason          text NOT NULL,
    PRIMARY KEY (event_id, user_id, rank)
);

-- The backfill's selection: an event's fallback insights, newest lists first.
CREATE INDEX matches_fallback_newest ON matches (event_id, updated_at DESC) WHERE insight_source = 'fallback';

-- As 007 does for every engine table: no privilege for PUBLIC (or
-- Supabase's API roles), row level security with the worker's policy only
-- (starter grant-worker adds it).
DO $$
DECLARE
    api_roles text := (
        SELECT string_agg(quote_ident(rolname), ', ' ORDER BY rolname)
        FROM pg_roles WHERE rolname IN ('anon', 'authenticated'));
    grantees text := 'PUBLIC' || coalesce(', ' || api_roles, '');
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['public.matchmaking_ai_backfill', 'public.matchmaking_ai_skips'] LOOP
        EXECUTE format('REVOKE ALL ON TABLE %s FROM %s', t, grantees);
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
    END LOOP;
END;
$$;
