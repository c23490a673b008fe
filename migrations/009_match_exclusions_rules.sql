-- Who may be matched with whom: members' declines, blocks and "already met"
-- (match_exclusions), the organiser's rules on which attendee types meet
-- (match_rules, attendee_type), and shared languages (languages). The
-- engine reads them when it scores (store.LoadSnapshot, matching's
-- eligibility); this file makes every change to them reach the queue:
--
-- - An exclusion added (INSERT, or an UPDATE that names another pair)
--   takes the pair's rows out of matches at once, in both directions, and
--   re-matches both members (priority 2, as a profile edit). It bumps the
--   event's version and records both members in matchmaking_departures at
--   it, so that a batch scored before the exclusion commits none of the
--   lists that belong to or name either of them (CommitBatch sets those
--   aside as it does for members who left): no excluded pair is ever
--   listed, not even by a batch that was running. Both are logged as
--   changed members, so a worker's cached pool reads their exclusions again.
-- - An exclusion removed makes the pair eligible again: both are logged as
--   changed members and re-matched.
-- - A change to an event's match_rules re-matches every member of the event
--   (priority 2) and moves members_version without a log line, so every
--   worker's cached copy of the event is read again whole, rules included.
-- - attendee_type and languages are profile columns: changing them is a
--   profile edit.
--
-- Row level security: a member (Supabase's `authenticated`, auth.uid())
-- reads, writes and deletes only the exclusions where they are user_id;
-- `anon` nothing. match_rules is the organiser's: only the owner and roles
-- granted it explicitly (Supabase's service_role, which bypasses RLS; the
-- Compose web app through deploy/postgres/app-grants.sql) read or write it.
-- The worker reads both (starter grant-worker).

ALTER TABLE all_events_members ADD COLUMN IF NOT EXISTS attendee_type text;
ALTER TABLE all_events_members ADD COLUMN IF NOT EXISTS languages text[];

-- One row per member and person they do not want to be matched with. A row
-- works in both directions; the reason is kept for the web app.
CREATE TABLE match_exclusions (
    event_id         uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id          uuid NOT NULL,
    excluded_user_id uuid NOT NULL,
    reason           text NOT NULL CHECK (reason IN ('blocked', 'declined', 'already_met')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, user_id, excluded_user_id),
    CHECK (user_id <> excluded_user_id)
);

-- The other direction: who excluded a member.
CREATE INDEX match_exclusions_excluded ON match_exclusions (event_id, excluded_user_id);

-- When an event has at least one rule, a member of viewer_type is shown
-- only members of a candidate_type that a rule pairs with it. Types compare
-- case- and space-insensitively, as tags do.
CREATE TABLE match_rules (
    event_id       uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    viewer_type    text NOT NULL CHECK (btrim(viewer_type) <> ''),
    candidate_type text NOT NULL CHECK (btrim(candidate_type) <> ''),
    PRIMARY KEY (event_id, viewer_type, candidate_type)
);

-- Pairs (p_event_ids[k], p_user_ids[k], p_excluded[k]) now excluded.
CREATE FUNCTION public.matchmaking_exclusions_added(p_event_ids uuid[], p_user_ids uuid[], p_excluded uuid[])
RETURNS void
LANGUAGE plpgsql
SET search_path = '' AS $$
DECLARE
    sides_events uuid[];
    sides_users  uuid[];
BEGIN
    IF p_event_ids IS NULL THEN
        RETURN; -- a statement that changed no row
    END IF;
    SELECT array_agg(s.event_id), array_agg(s.user_id) INTO sides_events, sides_users
    FROM (SELECT x.event_id, x.user_id FROM unnest(p_event_ids, p_user_ids) AS x (event_id, user_id)
          UNION
          SELECT x.event_id, x.user_id FROM unnest(p_event_ids, p_excluded) AS x (event_id, user_id)) s;

    -- The state row first, as on every path. Both members count as
    -- departed for a batch scored before this version.
    WITH bumped AS (
        UPDATE public.matchmaking_event_state s SET version = s.version + 1, members_version = s.members_version + 1
        WHERE s.event_id IN (SELECT DISTINCT e FROM unnest(p_event_ids) AS e)
        RETURNING s.event_id, s.version
    )
    INSERT INTO public.matchmaking_departures (event_id, user_id, version)
    SELECT d.event_id, d.user_id, b.version
    FROM unnest(sides_events, sides_users) AS d (event_id, user_id)
    JOIN bumped b ON b.event_id = d.event_id;

    DELETE FROM public.matches m
    USING unnest(p_event_ids, p_user_ids, p_excluded) AS x (event_id, a, b)
    WHERE m.event_id = x.event_id
      AND ((m.user_id = x.a AND m.matched_user_id = x.b) OR (m.user_id = x.b AND m.matched_user_id = x.a));

    PERFORM public.matchmaking_log_changes('members', sides_events, sides_users);
    PERFORM public.matchmaking_log_changes('lists', sides_events, sides_users);

    PERFORM public.matchmaking_enqueue_rows(m.event_id, array_agg(m.user_id), 2)
    FROM unnest(sides_events, sides_users) AS d (event_id, user_id)
    JOIN public.all_events_members m ON m.event_id = d.event_id AND m.user_id = d.user_id
    JOIN public.events e ON e.id = m.event_id AND e.matchmaking_enabled
    GROUP BY m.event_id;
END;
$$;

-- Pairs no longer excluded (by this row; another row may still exclude
-- them): both members are read again and re-matched.
CREATE FUNCTION public.matchmaking_exclusions_removed(p_event_ids uuid[], p_user_ids uuid[], p_excluded uuid[])
RETURNS void
LANGUAGE plpgsql
SET search_path = '' AS $$
DECLARE
    sides_events uuid[];
    sides_users  uuid[];
BEGIN
    IF p_event_ids IS NULL THEN
        RETURN; -- a statement that changed no row
    END IF;
    SELECT array_agg(s.event_id), array_agg(s.user_id) INTO sides_events, sides_users
    FROM (SELECT x.event_id, x.user_id FROM unnest(p_event_ids, p_user_ids) AS x (event_id, user_id)
          UNION
          SELECT x.event_id, x.user_id FROM unnest(p_event_ids, p_excluded) AS x (event_id, user_id)) s;

    UPDATE public.matchmaking_event_state s SET members_version = s.members_version + 1
    WHERE s.event_id IN (SELECT DISTINCT e FROM unnest(p_event_ids) AS e);
    PERFORM public.matchmaking_log_changes('members', sides_events, sides_users);

    PERFORM public.matchmaking_enqueue_rows(m.event_id, array_agg(m.user_id), 2)
    FROM unnest(sides_events, sides_users) AS d (event_id, user_id)
    JOIN public.all_events_members m ON m.event_id = d.event_id AND m.user_id = d.user_id
    JOIN public.events e ON e.id = m.event_id AND e.matchmaking_enabled
    GROUP BY m.event_id;
END;
$$;

CREATE FUNCTION public.matchmaking_exclusions_inserted() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
    PERFORM public.matchmaking_exclusions_added(
        (SELECT array_agg(event_id) FROM inserted_exclusions),
        (SELECT array_agg(user_id) FROM inserted_exclusions),
        (SELECT array_agg(excluded_user_id) FROM inserted_exclusions));
    RETURN NULL;
END;
$$;

CREATE FUNCTION public.matchmaking_exclusions_deleted() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
    PERFORM public.matchmaking_exclusions_removed(
        (SELECT array_agg(event_id) FROM deleted_exclusions),
        (SELECT array_agg(user_id) FROM deleted_exclusions),
        (SELECT array_agg(excluded_user_id) FROM deleted_exclusions));
    RETURN NULL;
END;
$$;

-- An UPDATE that names another pair removes the old one and adds the new
-- one; changing only the reason changes nothing for matching.
CREATE FUNCTION public.matchmaking_exclusions_updated() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = '' AS $$
DECLARE
    gone record;
    came record;
BEGIN
    SELECT array_agg(o.event_id) AS events, array_agg(o.user_id) AS users, array_agg(o.excluded_user_id) AS excluded
    INTO gone
    FROM old_exclusions o
    WHERE NOT EXISTS (SELECT 1 FROM new_exclusions n
                      WHERE (n.event_id, n.user_id, n.excluded_user_id) = (o.event_id, o.user_id, o.excluded_user_id));
    SELECT array_agg(n.event_id) AS events, array_agg(n.user_id) AS users, array_agg(n.excluded_user_id) AS excluded
    INTO came
    FROM new_exclusions n
    WHERE NOT EXISTS (SELECT 1 FROM old_exclusions o
                      WHERE (n.event_id, n.user_id, n.excluded_user_id) = (o.event_id, o.user_id, o.excluded_user_id));
    IF gone.events IS NOT NULL THEN
        PERFORM public.matchmaking_exclusions_removed(gone.events, gone.users, gone.excluded);
    END IF;
    IF came.events IS NOT NULL THEN
        PERFORM public.matchmaking_exclusions_added(came.events, came.users, came.excluded);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER matchmaking_exclusions_inserted
    AFTER INSERT ON public.match_exclusions
    REFERENCING NEW TABLE AS inserted_exclusions
    FOR EACH STATEMENT EXECUTE FUNCTION public.matchmaking_exclusions_inserted();

CREATE TRIGGER matchmaking_exclusions_deleted
    AFTER DELETE ON public.match_exclusions
    REFERENCING OLD TABLE AS deleted_exclusions
    FOR EACH STATEMENT EXECUTE FUNCTION public.matchmaking_exclusions_deleted();

CREATE TRIGGER matchmaking_exclusions_updated
    AFTER UPDATE ON public.match_exclusions
    REFERENCING OLD TABLE AS old_exclusions NEW TABLE AS new_exclusions
    FOR EACH STATEMENT EXECUTE FUNCTION public.matchmaking_exclusions_updated();

-- Rules changed for these events: every member goes round again, and the
-- members version moves without a log line, so any cached copy of the
-- event (which holds the old rules) is read again whole.
CREATE FUNCTION public.matchmaking_rules_changed(p_event_ids uuid[])
RETURNS void
LANGUAGE plpgsql
SET search_path = '' AS $$
BEGIN
    UPDATE public.matchmaking_event_state s SET members_version = s.members_version + 1
    WHERE s.event_id IN (SELECT DISTINCT e FROM unnest(p_event_ids) AS e);

    PERFORM public.enqueue_event_matchmaking(e.id, 2)
    FROM public.events e
    WHERE e.id IN (SELECT DISTINCT x FROM unnest(p_event_ids) AS x) AND e.matchmaking_enabled;
END;
$$;

CREATE FUNCTION public.matchmaking_rules_inserted() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
    PERFORM public.matchmaking_rules_changed((SELECT array_agg(event_id) FROM changed_rules));
    RETURN NULL;
END;
$$;

CREATE FUNCTION public.matchmaking_rules_deleted() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
    PERFORM public.matchmaking_rules_changed((SELECT array_agg(event_id) FROM changed_rules));
    RETURN NULL;
END;
$$;

CREATE FUNCTION public.matchmaking_rules_updated() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
    PERFORM public.matchmaking_rules_changed(
        (SELECT array_agg(event_id) FROM (SELECT event_id FROM old_rules UNION SELECT event_id FROM new_rules) e));
    RETURN NULL;
END;
$$;

CREATE TRIGGER matchmaking_rules_inserted
    AFTER INSERT ON public.match_rules
    REFERENCING NEW TABLE AS changed_rules
    FOR EACH STATEMENT EXECUTE FUNCTION public.matchmaking_rules_inserted();

CREATE TRIGGER matchmaking_rules_deleted
    AFTER DELETE ON public.match_rules
    REFERENCING OLD TABLE AS changed_rules
    FOR EACH STATEMENT EXECUTE FUNCTION public.matchmaking_rules_deleted();

CREATE TRIGGER matchmaking_rules_updated
    AFTER UPDATE ON public.match_rules
    REFERENCING OLD TABLE AS old_rules NEW TABLE AS new_rules
    FOR EACH STATEMENT EXECUTE FUNCTION public.matchmaking_rules_updated();

-- The member update trigger of 007, with attendee_type and languages among
-- the columns whose change is a profile edit. (007's hash guard covers the
-- bodies 001 to 006 left, which 007 replaced; this body replaces 007's.)
CREATE OR REPLACE FUNCTION public.matchmaking_members_updated() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = '' AS $$
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
    UPDATE public.matchmaking_event_state s SET members_version = s.members_version + 1
    WHERE s.event_id IN (SELECT event_id FROM new_members UNION SELECT event_id FROM old_members);
    PERFORM public.matchmaking_log_changes('members', array_agg(c.event_id), array_agg(c.user_id))
    FROM (SELECT event_id, user_id FROM new_members UNION SELECT event_id, user_id FROM old_members) c;

    IF gone_users IS NOT NULL THEN
        PERFORM public.matchmaking_members_departed(gone_events, gone_users);
    END IF;
    IF new_users IS NOT NULL THEN
        PERFORM public.matchmaking_members_arrived(new_events, new_users);
    END IF;

    SELECT array_agg(n.event_id), array_agg(n.user_id) INTO edited_events, edited_users
    FROM new_members n
    JOIN old_members o ON o.event_id = n.event_id AND o.user_id = n.user_id
    WHERE (o.display_name, o.company, o.job_title, o.industry, o.interests, o.looking_for, o.offering, o.bio,
           o.attendee_type, o.languages)
          IS DISTINCT FROM
          (n.display_name, n.company, n.job_title, n.industry, n.interests, n.looking_for, n.offering, n.bio,
           n.attendee_type, n.languages);

    IF edited_users IS NOT NULL THEN
        DELETE FROM public.matchmaking_quarantine q
        USING unnest(edited_events, edited_users) AS ed (event_id, user_id)
        WHERE q.event_id = ed.event_id AND q.user_id = ed.user_id;

        PERFORM public.matchmaking_enqueue_rows(ed.event_id, array_agg(ed.user_id), 2)
        FROM unnest(edited_events, edited_users) AS ed (event_id, user_id)
        JOIN public.events e ON e.id = ed.event_id AND e.matchmaking_enabled
        GROUP BY ed.event_id;
    END IF;
    RETURN NULL;
END;
$$;

-- Closed as 007 closes the engine's objects: nobody but the owner executes
-- the new functions, and both tables have row level security.
DO $$
DECLARE
    api_roles text := (
        SELECT string_agg(quote_ident(rolname), ', ' ORDER BY rolname)
        FROM pg_roles WHERE rolname IN ('anon', 'authenticated'));
    grantees text := 'PUBLIC' || coalesce(', ' || api_roles, '');
    fn regprocedure;
BEGIN
    FOREACH fn IN ARRAY ARRAY[
        'public.matchmaking_exclusions_added(uuid[],uuid[],uuid[])',
        'public.matchmaking_exclusions_removed(uuid[],uuid[],uuid[])',
        'public.matchmaking_exclusions_inserted()',
        'public.matchmaking_exclusions_deleted()',
        'public.matchmaking_exclusions_updated()',
        'public.matchmaking_rules_changed(uuid[])',
        'public.matchmaking_rules_inserted()',
        'public.matchmaking_rules_deleted()',
        'public.matchmaking_rules_updated()']::regprocedure[]
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %s', fn, grantees);
    END LOOP;
    EXECUTE format('REVOKE ALL ON TABLE public.match_exclusions, public.match_rules FROM %s', grantees);
END;
$$;

ALTER TABLE public.match_exclusions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.match_rules ENABLE ROW LEVEL SECURITY;

-- Where Supabase's auth.uid() exists, a signed-in member manages their own
-- exclusions: reads, adds and removes the rows where they are user_id, and
-- may change only a row's reason. Nobody else's rows are visible to them,
-- so a member never learns who declined or blocked them.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated')
       AND to_regprocedure('auth.uid()') IS NOT NULL THEN
        GRANT SELECT, INSERT, DELETE ON TABLE public.match_exclusions TO authenticated;
        GRANT UPDATE (reason) ON TABLE public.match_exclusions TO authenticated;
        -- (SELECT auth.uid()) is evaluated once per statement, not per row.
        CREATE POLICY match_exclusions_member_own ON public.match_exclusions
            FOR ALL TO authenticated
            USING (user_id = (SELECT auth.uid()))
            WITH CHECK (user_id = (SELECT auth.uid()));
    END IF;
END;
$$;
