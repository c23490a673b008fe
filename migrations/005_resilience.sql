-- Nothing blocks an event: poison rows, churn and crashes.
--
-- 1. matchmaking_quarantine: members whose rows the database refuses (a
--    constraint or trigger the web app added on matches, say), with the
--    reason. They are left out of scoring until their profile changes or an
--    operator retries them, so one bad row never stops the rest. Profiles
--    themselves are read defensively (matchmaking_clean_tags below), so an
--    odd value is matched, not quarantined.
-- 2. matchmaking_departures: who left an event at which version. A batch
--    scored before a departure commits everything the departure cannot
--    affect, instead of being thrown away whole.
-- 3. The member triggers are rebuilt so that every path locks the event's
--    state row before queue rows (no deadlock with a commit), and an UPDATE
--    that changes a member's event_id or user_id is a departure plus an
--    arrival.

CREATE TABLE matchmaking_quarantine (
    event_id       uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id        uuid NOT NULL,
    -- what the database said when it refused the member's rows
    reason         text NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, user_id)
);

CREATE TABLE matchmaking_departures (
    event_id    uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL,
    -- the event's version right after the departure bumped it
    version     bigint NOT NULL,
    departed_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX matchmaking_departures_event_version ON matchmaking_departures (event_id, version);

-- A tag array as scoring reads it: any shape flattened, NULL and blank
-- elements dropped, each tag cut to max_chars, at most max_tags kept in
-- order. The caps come from the caller (profiletext.MaxTagsPerField and
-- MaxTagRunes), so one place defines them.
CREATE FUNCTION matchmaking_clean_tags(tags text[], max_tags integer, max_chars integer)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(left(t, max_chars) ORDER BY n), '{}')
    FROM (
        SELECT t, n FROM unnest(tags) WITH ORDINALITY AS u (t, n)
        WHERE t IS NOT NULL AND btrim(t) <> ''
        ORDER BY n
        LIMIT max_tags
    ) kept;
$$;

-- Members leaving an event (deleted, or moved away by an UPDATE of their
-- key): their lists go in both directions, their queue and quarantine rows
-- go, whoever listed them is re-matched at priority 1, and the departure is
-- logged at the event's new version so that a batch scored earlier commits
-- only the lists the departure cannot affect.
CREATE FUNCTION matchmaking_members_departed(p_event_ids uuid[], p_user_ids uuid[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    lister_events uuid[];
    lister_users  uuid[];
BEGIN
    -- The state row is locked first, as by every other path, so that a
    -- commit holding it finishes before the statements below look for
    -- matches, and no two paths wait on each other's queue rows.
    WITH bumped AS (
        UPDATE matchmaking_event_state s SET version = s.version + 1, members_version = s.members_version + 1
        WHERE s.event_id IN (SELECT DISTINCT e FROM unnest(p_event_ids) AS e)
        RETURNING s.event_id, s.version
    )
    INSERT INTO matchmaking_departures (event_id, user_id, version)
    SELECT d.event_id, d.user_id, b.version
    FROM unnest(p_event_ids, p_user_ids) AS d (event_id, user_id)
    JOIN bumped b ON b.event_id = d.event_id;

    WITH removed AS (
        DELETE FROM matches m
        USING unnest(p_event_ids, p_user_ids) AS d (event_id, user_id)
        WHERE m.event_id = d.event_id AND m.matched_user_id = d.user_id
        RETURNING m.event_id, m.user_id
    )
    SELECT array_agg(event_id), array_agg(user_id) INTO lister_events, lister_users
    FROM (SELECT DISTINCT event_id, user_id FROM removed) r;

    DELETE FROM matches m USING unnest(p_event_ids, p_user_ids) AS d (event_id, user_id)
    WHERE m.event_id = d.event_id AND m.user_id = d.user_id;

    DELETE FROM matchmaking_queue q USING unnest(p_event_ids, p_user_ids) AS d (event_id, user_id)
    WHERE q.event_id = d.event_id AND q.user_id = d.user_id;

    DELETE FROM matchmaking_quarantine q USING unnest(p_event_ids, p_user_ids) AS d (event_id, user_id)
    WHERE q.event_id = d.event_id AND q.user_id = d.user_id;

    PERFORM matchmaking_enqueue_rows(l.event_id, array_agg(l.user_id), 1)
    FROM unnest(lister_events, lister_users) AS l (event_id, user_id)
    JOIN events e ON e.id = l.event_id AND e.matchmaking_enabled
    WHERE NOT EXISTS (
        SELECT 1 FROM unnest(p_event_ids, p_user_ids) AS d (event_id, user_id)
        WHERE d.event_id = l.event_id AND d.user_id = l.user_id)
    GROUP BY l.event_id;
END;
$$;

-- The old triggers fired in name order, which put queue locks before the
-- state row's lock; one trigger per statement kind now does both in order.
DROP TRIGGER matchmaking_members_inserted ON all_events_members;
DROP TRIGGER matchmaking_members_updated ON all_events_members;
DROP TRIGGER matchmaking_members_deleted ON all_events_members;
DROP TRIGGER matchmaking_members_version_insert ON all_events_members;
DROP TRIGGER matchmaking_members_version_update ON all_events_members;
DROP TRIGGER matchmaking_members_version_delete ON all_events_members;
DROP FUNCTION matchmaking_members_inserted();
DROP FUNCTION matchmaking_members_updated();
DROP FUNCTION matchmaking_members_deleted();
DROP FUNCTION matchmaking_members_version_bump();

-- Arrivals: newcomers at priority 0.
CREATE FUNCTION matchmaking_members_arrived(p_event_ids uuid[], p_user_ids uuid[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE matchmaking_event_state s SET members_version = s.members_version + 1
    WHERE s.event_id IN (SELECT DISTINCT e FROM unnest(p_event_ids) AS e);

    PERFORM matchmaking_enqueue_rows(n.event_id, array_agg(n.user_id), 0)
    FROM unnest(p_event_ids, p_user_ids) AS n (event_id, user_id)
    JOIN events e ON e.id = n.event_id AND e.matchmaking_enabled
    GROUP BY n.event_id;
END;
$$;

CREATE FUNCTION matchmaking_members_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM matchmaking_members_arrived(
        (SELECT array_agg(event_id) FROM inserted_members),
        (SELECT array_agg(user_id) FROM inserted_members));
    RETURN NULL;
END;
$$;

CREATE TRIGGER matchmaking_members_inserted
    AFTER INSERT ON all_events_members
    REFERENCING NEW TABLE AS inserted_members
    FOR EACH STATEMENT EXECUTE FUNCTION matchmaking_members_inserted();

CREATE FUNCTION matchmaking_members_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM matchmaking_members_departed(
        (SELECT array_agg(event_id) FROM deleted_members),
        (SELECT array_agg(user_id) FROM deleted_members));
    RETURN NULL;
END;
$$;

CREATE TRIGGER matchmaking_members_deleted
    AFTER DELETE ON all_events_members
    REFERENCING OLD TABLE AS deleted_members
    FOR EACH STATEMENT EXECUTE FUNCTION matchmaking_members_deleted();

-- Updates. A row whose key (event_id, user_id) changed is a departure of
-- the old identity and an arrival of the new one. A row whose key stayed is
-- a profile change, priority 2, when a column that feeds matching or
-- insights changed (touching updated_at alone re-matches nobody); it also
-- takes the member out of quarantine, since the profile is new.
CREATE FUNCTION matchmaking_members_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    gone_events uuid[];
    gone_users  uuid[];
    new_events  uuid[];
    new_users   uuid[];
    edited_events uuid[];
    edited_users  uuid[];
BEGIN
    SELECT array_agg(o.event_id), array_agg(o.user_id) INTO gone_events, gone_users
    FROM old_members o
    WHERE NOT EXISTS (SELECT 1 FROM new_members n WHERE n.event_id = o.event_id AND n.user_id = o.user_id);

    SELECT array_agg(n.event_id), array_agg(n.user_id) INTO new_events, new_users
    FROM new_members n
    WHERE NOT EXISTS (SELECT 1 FROM old_members o WHERE o.event_id = n.event_id AND o.user_id = n.user_id);

    -- members_version of every event touched, state rows first.
    UPDATE matchmaking_event_state s SET members_version = s.members_version + 1
    WHERE s.event_id IN (SELECT event_id FROM new_members UNION SELECT event_id FROM old_members);

    IF gone_users IS NOT NULL THEN
        PERFORM matchmaking_members_departed(gone_events, gone_users);
    END IF;
    IF new_users IS NOT NULL THEN
        PERFORM matchmaking_members_arrived(new_events, new_users);
    END IF;

    SELECT array_agg(n.event_id), array_agg(n.user_id) INTO edited_events, edited_users
    FROM new_members n
    JOIN old_members o ON o.event_id = n.event_id AND o.user_id = n.user_id
    WHERE (o.display_name, o.company, o.job_title, o.industry, o.interests, o.looking_for, o.offering, o.bio)
          IS DISTINCT FROM
          (n.display_name, n.company, n.job_title, n.industry, n.interests, n.looking_for, n.offering, n.bio);

    IF edited_users IS NOT NULL THEN
        DELETE FROM matchmaking_quarantine q
        USING unnest(edited_events, edited_users) AS ed (event_id, user_id)
        WHERE q.event_id = ed.event_id AND q.user_id = ed.user_id;

        PERFORM matchmaking_enqueue_rows(ed.event_id, array_agg(ed.user_id), 2)
        FROM unnest(edited_events, edited_users) AS ed (event_id, user_id)
        JOIN events e ON e.id = ed.event_id AND e.matchmaking_enabled
        GROUP BY ed.event_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER matchmaking_members_updated
    AFTER UPDATE ON all_events_members
    REFERENCING OLD TABLE AS old_members NEW TABLE AS new_members
    FOR EACH STATEMENT EXECUTE FUNCTION matchmaking_members_updated();
