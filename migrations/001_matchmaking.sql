-- The web app's tables. IF NOT EXISTS lets the migration run against a
-- database where the web app already created them with the same shape.
CREATE TABLE IF NOT EXISTS events (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    code                text NOT NULL UNIQUE,
    name                text NOT NULL,
    matchmaking_enabled boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS all_events_members (
    event_id     uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL,
    display_name text NOT NULL,
    company      text,
    job_title    text,
    industry     text,
    interests    text[] NOT NULL DEFAULT '{}',
    looking_for  text[] NOT NULL DEFAULT '{}',
    offering     text[] NOT NULL DEFAULT '{}',
    bio          text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, user_id)
);

-- One row per member waiting to be (re)matched. A claim is a lease: the
-- batch's token plus an expiry, so a crashed worker's rows come back.
-- generation grows with every enqueue; the claim remembers the generation it
-- saw, so an enqueue while the row is being processed survives the batch and
-- causes another pass.
CREATE TABLE matchmaking_queue (
    event_id           uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id            uuid NOT NULL,
    priority           smallint NOT NULL CHECK (priority BETWEEN 0 AND 3),
    enqueued_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    generation         bigint NOT NULL DEFAULT 1,
    claim_token        text,
    claimed_generation bigint,
    claimed_at         timestamptz,
    lease_expires_at   timestamptz,
    attempts           integer NOT NULL DEFAULT 0,
    last_error         text,
    UNIQUE (event_id, user_id),
    CHECK ((claim_token IS NULL) = (lease_expires_at IS NULL))
);

CREATE INDEX matchmaking_queue_claim_order
    ON matchmaking_queue (event_id, priority DESC, enqueued_at, user_id);
CREATE INDEX matchmaking_queue_claim_token
    ON matchmaking_queue (claim_token) WHERE claim_token IS NOT NULL;

-- Each member's current top-N.
CREATE TABLE matches (
    event_id        uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL,
    matched_user_id uuid NOT NULL,
    rank            smallint NOT NULL CHECK (rank BETWEEN 1 AND 20),
    score           real NOT NULL CHECK (score >= 0 AND score <= 1),
    reasons         jsonb NOT NULL DEFAULT '{}',
    insight         text NOT NULL,
    insight_source  text NOT NULL CHECK (insight_source IN ('ai', 'fallback')),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, user_id, rank),
    UNIQUE (event_id, user_id, matched_user_id),
    CHECK (user_id <> matched_user_id)
);

-- Who lists a member: the delete trigger re-enqueues them.
CREATE INDEX matches_matched_user ON matches (event_id, matched_user_id);

-- A version per event, bumped by every commit and by anything else that
-- rewrites matches (member deletion). A batch scored against version v may
-- only commit while the version is still v.
CREATE TABLE matchmaking_event_state (
    event_id uuid PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    version  bigint NOT NULL DEFAULT 0
);

-- One row per batch, written by the claim and completed by the commit. It is
-- what makes every step idempotent under retries: a retried claim finds its
-- rows, a retried commit finds committed_at set and returns what it recorded.
CREATE TABLE matchmaking_batches (
    token           text PRIMARY KEY,
    event_id        uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    claimed_users   uuid[] NOT NULL,
    claimed_at      timestamptz NOT NULL DEFAULT now(),
    base_version    bigint,
    viewers         uuid[],
    staged_rows     integer,
    scored_at       timestamptz,
    committed_at    timestamptz,
    users_committed integer,
    users_requeued  integer,
    ai_insights     integer,
    fallback_insights integer,
    released_at     timestamptz,
    last_error      text
);

CREATE INDEX matchmaking_batches_event ON matchmaking_batches (event_id, claimed_at DESC);

-- New lists of one batch, waiting for their insights and the commit.
CREATE TABLE matchmaking_staged_matches (
    token           text NOT NULL REFERENCES matchmaking_batches (token) ON DELETE CASCADE,
    user_id         uuid NOT NULL,
    matched_user_id uuid NOT NULL,
    rank            smallint NOT NULL,
    score           real NOT NULL,
    reasons         jsonb NOT NULL,
    insight         text,
    insight_source  text CHECK (insight_source IN ('ai', 'fallback')),
    PRIMARY KEY (token, user_id, rank)
);

-- Enqueue semantics shared by every path: a second enqueue keeps the higher
-- priority and the earlier time, and bumps the generation.
CREATE FUNCTION matchmaking_enqueue_rows(p_event_id uuid, p_user_ids uuid[], p_priority integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    affected integer;
BEGIN
    IF p_priority IS NULL OR p_priority < 0 OR p_priority > 3 THEN
        RAISE EXCEPTION 'matchmaking priority must be between 0 and 3, got %', p_priority;
    END IF;
    INSERT INTO matchmaking_queue AS q (event_id, user_id, priority)
    SELECT p_event_id, u, p_priority FROM unnest(p_user_ids) AS u
    ON CONFLICT (event_id, user_id) DO UPDATE
        SET priority    = GREATEST(q.priority, EXCLUDED.priority),
            enqueued_at = LEAST(q.enqueued_at, EXCLUDED.enqueued_at),
            generation  = q.generation + 1;
    GET DIAGNOSTICS affected = ROW_COUNT;
    RETURN affected;
END;
$$;

-- Kept from the seed: enqueue every member of an event.
CREATE FUNCTION enqueue_event_matchmaking(target_event uuid, target_priority integer)
RETURNS integer
LANGUAGE sql AS $$
    SELECT matchmaking_enqueue_rows(
        target_event,
        coalesce((SELECT array_agg(user_id) FROM all_events_members WHERE event_id = target_event), '{}'),
        target_priority);
$$;

-- Member insert: a newcomer, priority 0.
CREATE FUNCTION matchmaking_members_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM matchmaking_enqueue_rows(n.event_id, array_agg(n.user_id), 0)
    FROM inserted_members n
    JOIN events e ON e.id = n.event_id AND e.matchmaking_enabled
    GROUP BY n.event_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER matchmaking_members_inserted
    AFTER INSERT ON all_events_members
    REFERENCING NEW TABLE AS inserted_members
    FOR EACH STATEMENT EXECUTE FUNCTION matchmaking_members_inserted();

-- Profile change: priority 2. Only columns that feed matching or insights
-- count, so touching updated_at alone does not re-match anyone.
CREATE FUNCTION matchmaking_members_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM matchmaking_enqueue_rows(n.event_id, array_agg(n.user_id), 2)
    FROM new_members n
    JOIN old_members o ON o.event_id = n.event_id AND o.user_id = n.user_id
    JOIN events e ON e.id = n.event_id AND e.matchmaking_enabled
    WHERE (o.display_name, o.company, o.job_title, o.industry, o.interests, o.looking_for, o.offering, o.bio)
          IS DISTINCT FROM
          (n.display_name, n.company, n.job_title, n.industry, n.interests, n.looking_for, n.offering, n.bio)
    GROUP BY n.event_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER matchmaking_members_updated
    AFTER UPDATE ON all_events_members
    REFERENCING OLD TABLE AS old_members NEW TABLE AS new_members
    FOR EACH STATEMENT EXECUTE FUNCTION matchmaking_members_updated();

-- Member delete: their matches go in both directions, their queue row goes,
-- and whoever listed them is re-matched at priority 1. The event's version
-- moves so that a batch scored before the delete cannot write them back.
CREATE FUNCTION matchmaking_members_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    lister_events uuid[];
    lister_users  uuid[];
BEGIN
    -- Bump (and so lock) the version first: a commit that holds it finishes
    -- before the statements below look for matches, so they see its rows.
    UPDATE matchmaking_event_state s SET version = s.version + 1
    WHERE s.event_id IN (SELECT DISTINCT event_id FROM deleted_members);

    WITH removed AS (
        DELETE FROM matches m
        USING deleted_members d
        WHERE m.event_id = d.event_id AND m.matched_user_id = d.user_id
        RETURNING m.event_id, m.user_id
    )
    SELECT array_agg(event_id), array_agg(user_id) INTO lister_events, lister_users
    FROM (SELECT DISTINCT event_id, user_id FROM removed) r;

    DELETE FROM matches m USING deleted_members d
    WHERE m.event_id = d.event_id AND m.user_id = d.user_id;

    DELETE FROM matchmaking_queue q USING deleted_members d
    WHERE q.event_id = d.event_id AND q.user_id = d.user_id;

    PERFORM matchmaking_enqueue_rows(l.event_id, array_agg(l.user_id), 1)
    FROM unnest(lister_events, lister_users) AS l (event_id, user_id)
    JOIN events e ON e.id = l.event_id AND e.matchmaking_enabled
    WHERE NOT EXISTS (SELECT 1 FROM deleted_members d WHERE d.event_id = l.event_id AND d.user_id = l.user_id)
    GROUP BY l.event_id;

    RETURN NULL;
END;
$$;

CREATE TRIGGER matchmaking_members_deleted
    AFTER DELETE ON all_events_members
    REFERENCING OLD TABLE AS deleted_members
    FOR EACH STATEMENT EXECUTE FUNCTION matchmaking_members_deleted();

-- Event enable (false -> true): every member, priority 3.
CREATE FUNCTION matchmaking_event_enabled() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM enqueue_event_matchmaking(NEW.id, 3);
    RETURN NULL;
END;
$$;

CREATE TRIGGER matchmaking_event_enabled
    AFTER UPDATE OF matchmaking_enabled ON events
    FOR EACH ROW
    WHEN (NEW.matchmaking_enabled AND NOT OLD.matchmaking_enabled)
    EXECUTE FUNCTION matchmaking_event_enabled();

CREATE TRIGGER matchmaking_event_created_enabled
    AFTER INSERT ON events
    FOR EACH ROW
    WHEN (NEW.matchmaking_enabled)
    EXECUTE FUNCTION matchmaking_event_enabled();

-- Wake the worker's listener. Postgres folds identical notifications within
-- a transaction into one, so a 10,000-member enable sends one per event.
CREATE FUNCTION matchmaking_queue_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('matchmaking_queue', NEW.event_id::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER matchmaking_queue_notify
    AFTER INSERT OR UPDATE OF generation ON matchmaking_queue
    FOR EACH ROW EXECUTE FUNCTION matchmaking_queue_notify();

-- Kept from the seed: queue statistics per event.
CREATE FUNCTION get_matchmaking_queue_stats()
RETURNS TABLE (
    event_id    uuid,
    event_name  text,
    queue_size  bigint,
    oldest      timestamptz,
    newest      timestamptz,
    priority_0  bigint,
    priority_1  bigint,
    priority_2  bigint,
    priority_3  bigint,
    in_progress bigint
)
LANGUAGE sql STABLE AS $$
    SELECT e.id, e.name, count(*),
           min(q.enqueued_at), max(q.enqueued_at),
           count(*) FILTER (WHERE q.priority = 0),
           count(*) FILTER (WHERE q.priority = 1),
           count(*) FILTER (WHERE q.priority = 2),
           count(*) FILTER (WHERE q.priority = 3),
           count(*) FILTER (WHERE q.claim_token IS NOT NULL AND q.lease_expires_at > now())
    FROM matchmaking_queue q
    JOIN events e ON e.id = q.event_id
    GROUP BY e.id, e.name
    ORDER BY count(*) DESC, e.name;
$$;

-- Kept from the seed: the queue of one event, in claim order.
CREATE FUNCTION get_detailed_queue_info(target_event uuid)
RETURNS TABLE (
    user_id      uuid,
    display_name text,
    priority     smallint,
    enqueued_at  timestamptz,
    status       text,
    attempts     integer,
    last_error   text
)
LANGUAGE sql STABLE AS $$
    SELECT q.user_id, m.display_name, q.priority, q.enqueued_at,
           CASE WHEN q.claim_token IS NULL THEN 'queued'
                WHEN q.lease_expires_at > now() THEN 'processing'
                ELSE 'lease expired' END,
           q.attempts, q.last_error
    FROM matchmaking_queue q
    LEFT JOIN all_events_members m ON m.event_id = q.event_id AND m.user_id = q.user_id
    WHERE q.event_id = target_event
    ORDER BY q.priority DESC, q.enqueued_at, q.user_id;
$$;
