-- Which members and which lists each version of an event changed, so a
-- worker that holds an event's pool and lists in memory applies what
-- changed instead of reading the whole event again for every batch.
--
-- Every bump of matchmaking_event_state.members_version logs the members it
-- was for (counter 'members'), and every bump of version the owners of the
-- lists it rewrote (counter 'lists'). A reader with a copy at version v
-- trusts the log only when it holds one row for every version after v up to
-- the current one; otherwise (pruned, or a path that bumps without logging)
-- it reads the whole event, as before. A missing row costs a reload, never a
-- wrong list.

CREATE TABLE matchmaking_change_log (
    event_id  uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    counter   text NOT NULL CHECK (counter IN ('members', 'lists')),
    -- the counter's value right after the bump
    version   bigint NOT NULL,
    user_ids  uuid[] NOT NULL,
    logged_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, counter, version)
);

-- Logs users under the current value of counter for each of their events.
-- Callers have just bumped that counter on every event in p_event_ids, in
-- this transaction, so the state rows are theirs and the value is the one
-- they wrote.
CREATE FUNCTION matchmaking_log_changes(p_counter text, p_event_ids uuid[], p_user_ids uuid[])
RETURNS void
LANGUAGE sql AS $$
    INSERT INTO matchmaking_change_log AS l (event_id, counter, version, user_ids)
    SELECT s.event_id, p_counter,
           CASE p_counter WHEN 'members' THEN s.members_version ELSE s.version END,
           array_agg(DISTINCT c.user_id)
    FROM unnest(p_event_ids, p_user_ids) AS c (event_id, user_id)
    JOIN matchmaking_event_state s ON s.event_id = c.event_id
    WHERE c.user_id IS NOT NULL
    GROUP BY 1, 2, 3
    -- The same version twice would mean the counter went back (a state row
    -- dropped and made again); keeping both sets only costs a reload.
    ON CONFLICT (event_id, counter, version) DO UPDATE
    SET user_ids = l.user_ids || EXCLUDED.user_ids, logged_at = now();
$$;

-- The member triggers' functions of 005, each with its log lines added.

CREATE OR REPLACE FUNCTION matchmaking_members_departed(p_event_ids uuid[], p_user_ids uuid[])
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

    -- The departed left the pool; their own lists and the lists that
    -- named them changed.
    PERFORM matchmaking_log_changes('members', p_event_ids, p_user_ids);
    PERFORM matchmaking_log_changes('lists',
        p_event_ids || coalesce(lister_events, '{}'), p_user_ids || coalesce(lister_users, '{}'));

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

CREATE OR REPLACE FUNCTION matchmaking_members_arrived(p_event_ids uuid[], p_user_ids uuid[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE matchmaking_event_state s SET members_version = s.members_version + 1
    WHERE s.event_id IN (SELECT DISTINCT e FROM unnest(p_event_ids) AS e);
    PERFORM matchmaking_log_changes('members', p_event_ids, p_user_ids);

    PERFORM matchmaking_enqueue_rows(n.event_id, array_agg(n.user_id), 0)
    FROM unnest(p_event_ids, p_user_ids) AS n (event_id, user_id)
    JOIN events e ON e.id = n.event_id AND e.matchmaking_enabled
    GROUP BY n.event_id;
END;
$$;

CREATE OR REPLACE FUNCTION matchmaking_members_updated() RETURNS trigger
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
    PERFORM matchmaking_log_changes('members', array_agg(c.event_id), array_agg(c.user_id))
    FROM (SELECT event_id, user_id FROM new_members UNION SELECT event_id, user_id FROM old_members) c;

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

-- A large batch is scored in shards, on whichever workers take them
-- (ScoreShard), then merged by one (ScoreBatch). Each shard leaves the
-- offers its pairs bring into the event's lists (matching.Offers, binary)
-- and the versions of the event it scored; the merge uses them only when
-- they match its own.
CREATE TABLE matchmaking_batch_shards (
    token           text NOT NULL REFERENCES matchmaking_batches (token) ON DELETE CASCADE,
    shard           integer NOT NULL,
    shards          integer NOT NULL CHECK (shard >= 0 AND shard < shards),
    members_version bigint NOT NULL,
    lists_version   bigint NOT NULL,
    offers          bytea NOT NULL,
    scored_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token, shard)
);
