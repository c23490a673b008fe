-- Safe on Supabase: nothing of the engine is reachable through the Data API.
--
-- Supabase serves every table in public to its `anon` and `authenticated`
-- roles (the project's anon key and signed-in users) and, by its default
-- privileges, grants them ALL on every table and function the migrating role
-- creates there. The web app's names stay where they are (events,
-- all_events_members and matches in public); everything else is closed:
--
-- 1. The functions the triggers run become SECURITY DEFINER with an empty
--    search_path and fully qualified names. They run as the role that
--    migrates (their owner), so a member's INSERT or profile UPDATE by a role
--    that has no rights on the engine's tables (Supabase's `authenticated`
--    under the web app's RLS, a least-privilege web-app role) still enqueues,
--    and no caller's search_path can redirect what they touch. The helpers
--    they call get the same treatment, since they run inside them.
-- 2. Every engine table (matchmaking_*) loses every privilege of PUBLIC,
--    `anon` and `authenticated`, and gets row level security without any
--    policy for them: a later GRANT (a default privilege, a "grant all on all
--    tables") still shows them no rows. The owner bypasses RLS; a worker role
--    gets its access from `starter grant-worker`, which adds its policies.
--    The tables the worker fills with COPY keep RLS off (see below): the
--    revokes are their protection.
-- 3. Nobody but the owner may execute the engine's functions unless granted:
--    EXECUTE is revoked from PUBLIC (PostgreSQL's default) and from `anon`
--    and `authenticated` (Supabase's default privileges).
-- 4. matches gets RLS. Where Supabase's auth.uid() exists, a signed-in
--    member reads exactly the rows where they are user_id; `anon` reads
--    nothing; neither may write. Without an auth schema (plain PostgreSQL)
--    no policy is made, and the owner, which bypasses RLS, reads as before.
-- 5. Turning matchmaking off in SQL (UPDATE events SET matchmaking_enabled =
--    false, as a web app would) drops the event's queue as `starter disable`
--    does, so the event's workflow claims nothing more. Matches are kept.
--
-- Roles that do not exist (plain PostgreSQL has no anon or authenticated)
-- are skipped. Tables and functions are found by name, so those a later
-- migration adds are NOT covered by this file: migrations/supabase_test.go
-- fails until such a migration closes them the same way.

-- Re-creating the functions below replaces their bodies with the bodies of
-- 001, 005 and 006, qualified. If any other migration changed a body,
-- replacing it would silently undo that change: stop instead. The hashes are
-- of those bodies with runs of white space folded to one space.
DO $$
DECLARE
    expected constant jsonb := '{
        "enqueue_event_matchmaking(uuid,integer)": "513450320ad18dd3384701b8ab1e3229",
        "matchmaking_enqueue_rows(uuid,uuid[],integer)": "9c1603c46f63195007ceea5fae0e7141",
        "matchmaking_event_enabled()": "87908f996ed0b3d47bc0371c2d3c9cfd",
        "matchmaking_log_changes(text,uuid[],uuid[])": "79a7b8251b8b3cdfa5f5f9079e475911",
        "matchmaking_members_arrived(uuid[],uuid[])": "4c53bcb0a6c7ace2b79554e18168b4bb",
        "matchmaking_members_deleted()": "640e03a20bd5f3a39d08fa850984e4a3",
        "matchmaking_members_departed(uuid[],uuid[])": "333cd75815167adda2437cc6037de744",
        "matchmaking_members_inserted()": "a56b5e76858c76d85863cf6730ab8409",
        "matchmaking_members_updated()": "40d86c2dbef3627428e2803f4a5fc8db",
        "matchmaking_queue_notify()": "575068ea66b50e6f18437d7e6dff6f53"
    }';
    fn   text;
    hash text;
BEGIN
    FOR fn, hash IN SELECT key, value FROM jsonb_each_text(expected) LOOP
        IF NOT EXISTS (
            SELECT 1 FROM pg_proc p
            WHERE p.oid = to_regprocedure('public.' || fn)
              AND md5(regexp_replace(p.prosrc, '\s+', ' ', 'g')) = hash
        ) THEN
            RAISE EXCEPTION 'public.% is missing or is not the function migrations 001 to 006 left; this migration would replace its body: fold the change into 007_supabase.sql',
                fn;
        END IF;
    END LOOP;
END;
$$;

-- 1. The helpers, qualified. Invoker rights: the worker calls
-- matchmaking_enqueue_rows itself with its own grants; inside a trigger they
-- run as the trigger function's owner.

CREATE OR REPLACE FUNCTION public.matchmaking_enqueue_rows(p_event_id uuid, p_user_ids uuid[], p_priority integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = '' AS $$
DECLARE
    affected integer;
BEGIN
    IF p_priority IS NULL OR p_priority < 0 OR p_priority > 3 THEN
        RAISE EXCEPTION 'matchmaking priority must be between 0 and 3, got %', p_priority;
    END IF;
    INSERT INTO public.matchmaking_queue AS q (event_id, user_id, priority)
    SELECT p_event_id, u, p_priority FROM unnest(p_user_ids) AS u
    ON CONFLICT (event_id, user_id) DO UPDATE
        SET priority    = GREATEST(q.priority, EXCLUDED.priority),
            enqueued_at = LEAST(q.enqueued_at, EXCLUDED.enqueued_at),
            generation  = q.generation + 1;
    GET DIAGNOSTICS affected = ROW_COUNT;
    RETURN affected;
END;
$$;

CREATE OR REPLACE FUNCTION public.enqueue_event_matchmaking(target_event uuid, target_priority integer)
RETURNS integer
LANGUAGE sql
SET search_path = '' AS $$
    SELECT public.matchmaking_enqueue_rows(
        target_event,
        coalesce((SELECT array_agg(user_id) FROM public.all_events_members WHERE event_id = target_event), '{}'),
        target_priority);
$$;

-- The trigger functions: SECURITY DEFINER, so they act with the owner's
-- rights whoever changed the row. The transition tables (inserted_members
-- and so on) are named by the trigger, not looked up in a schema.

CREATE OR REPLACE FUNCTION public.matchmaking_members_inserted() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
    PERFORM public.matchmaking_members_arrived(
        (SELECT array_agg(event_id) FROM inserted_members),
        (SELECT array_agg(user_id) FROM inserted_members));
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION public.matchmaking_members_deleted() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
    PERFORM public.matchmaking_members_departed(
        (SELECT array_agg(event_id) FROM deleted_members),
        (SELECT array_agg(user_id) FROM deleted_members));
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION public.matchmaking_event_enabled() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
    PERFORM public.enqueue_event_matchmaking(NEW.id, 3);
    RETURN NULL;
END;
$$;

-- pg_notify needs no rights, but a definer with an empty search_path is what
-- every trigger function here is, so none can be redirected.
CREATE OR REPLACE FUNCTION public.matchmaking_queue_notify() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
    PERFORM pg_notify('matchmaking_queue', NEW.event_id::text);
    RETURN NULL;
END;
$$;

-- The functions of 006 (its change log): the helpers, with invoker rights as
-- above, and the update trigger's function.

CREATE OR REPLACE FUNCTION public.matchmaking_log_changes(p_counter text, p_event_ids uuid[], p_user_ids uuid[])
RETURNS void
LANGUAGE sql
SET search_path = '' AS $$
    INSERT INTO public.matchmaking_change_log AS l (event_id, counter, version, user_ids)
    SELECT s.event_id, p_counter,
           CASE p_counter WHEN 'members' THEN s.members_version ELSE s.version END,
           array_agg(DISTINCT c.user_id)
    FROM unnest(p_event_ids, p_user_ids) AS c (event_id, user_id)
    JOIN public.matchmaking_event_state s ON s.event_id = c.event_id
    WHERE c.user_id IS NOT NULL
    GROUP BY 1, 2, 3
    -- The same version twice would mean the counter went back (a state row
    -- dropped and made again); keeping both sets only costs a reload.
    ON CONFLICT (event_id, counter, version) DO UPDATE
    SET user_ids = l.user_ids || EXCLUDED.user_ids, logged_at = now();
$$;

CREATE OR REPLACE FUNCTION public.matchmaking_members_departed(p_event_ids uuid[], p_user_ids uuid[])
RETURNS void
LANGUAGE plpgsql
SET search_path = '' AS $$
DECLARE
    lister_events uuid[];
    lister_users  uuid[];
BEGIN
    -- The state row is locked first, as by every other path, so that a
    -- commit holding it finishes before the statements below look for
    -- matches, and no two paths wait on each other's queue rows.
    WITH bumped AS (
        UPDATE public.matchmaking_event_state s SET version = s.version + 1, members_version = s.members_version + 1
        WHERE s.event_id IN (SELECT DISTINCT e FROM unnest(p_event_ids) AS e)
        RETURNING s.event_id, s.version
    )
    INSERT INTO public.matchmaking_departures (event_id, user_id, version)
    SELECT d.event_id, d.user_id, b.version
    FROM unnest(p_event_ids, p_user_ids) AS d (event_id, user_id)
    JOIN bumped b ON b.event_id = d.event_id;

    WITH removed AS (
        DELETE FROM public.matches m
        USING unnest(p_event_ids, p_user_ids) AS d (event_id, user_id)
        WHERE m.event_id = d.event_id AND m.matched_user_id = d.user_id
        RETURNING m.event_id, m.user_id
    )
    SELECT array_agg(event_id), array_agg(user_id) INTO lister_events, lister_users
    FROM (SELECT DISTINCT event_id, user_id FROM removed) r;

    DELETE FROM public.matches m USING unnest(p_event_ids, p_user_ids) AS d (event_id, user_id)
    WHERE m.event_id = d.event_id AND m.user_id = d.user_id;

    -- The departed left the pool; their own lists and the lists that
    -- named them changed.
    PERFORM public.matchmaking_log_changes('members', p_event_ids, p_user_ids);
    PERFORM public.matchmaking_log_changes('lists',
        p_event_ids || coalesce(lister_events, '{}'), p_user_ids || coalesce(lister_users, '{}'));

    DELETE FROM public.matchmaking_queue q USING unnest(p_event_ids, p_user_ids) AS d (event_id, user_id)
    WHERE q.event_id = d.event_id AND q.user_id = d.user_id;

    DELETE FROM public.matchmaking_quarantine q USING unnest(p_event_ids, p_user_ids) AS d (event_id, user_id)
    WHERE q.event_id = d.event_id AND q.user_id = d.user_id;

    PERFORM public.matchmaking_enqueue_rows(l.event_id, array_agg(l.user_id), 1)
    FROM unnest(lister_events, lister_users) AS l (event_id, user_id)
    JOIN public.events e ON e.id = l.event_id AND e.matchmaking_enabled
    WHERE NOT EXISTS (
        SELECT 1 FROM unnest(p_event_ids, p_user_ids) AS d (event_id, user_id)
        WHERE d.event_id = l.event_id AND d.user_id = l.user_id)
    GROUP BY l.event_id;
END;
$$;

CREATE OR REPLACE FUNCTION public.matchmaking_members_arrived(p_event_ids uuid[], p_user_ids uuid[])
RETURNS void
LANGUAGE plpgsql
SET search_path = '' AS $$
BEGIN
    UPDATE public.matchmaking_event_state s SET members_version = s.members_version + 1
    WHERE s.event_id IN (SELECT DISTINCT e FROM unnest(p_event_ids) AS e);
    PERFORM public.matchmaking_log_changes('members', p_event_ids, p_user_ids);

    PERFORM public.matchmaking_enqueue_rows(n.event_id, array_agg(n.user_id), 0)
    FROM unnest(p_event_ids, p_user_ids) AS n (event_id, user_id)
    JOIN public.events e ON e.id = n.event_id AND e.matchmaking_enabled
    GROUP BY n.event_id;
END;
$$;

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
    WHERE (o.display_name, o.company, o.job_title, o.industry, o.interests, o.looking_for, o.offering, o.bio)
          IS DISTINCT FROM
          (n.display_name, n.company, n.job_title, n.industry, n.interests, n.looking_for, n.offering, n.bio);

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

-- 5. Event disable (true -> false) in SQL: the queue goes, as with `starter
-- disable`, so claims find nothing. The trigger is deferred to the end of
-- the transaction, for two reasons: `starter disable` turns the flag off
-- and deletes the queue in one transaction and reports how many rows its
-- own DELETE removed, which it still does; and a transaction that turns the
-- event off and on again keeps the queue the enable made, because the
-- deferred check looks at the event as it is at commit.
CREATE FUNCTION public.matchmaking_event_disabled() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
    DELETE FROM public.matchmaking_queue q
    WHERE q.event_id = NEW.id
      AND NOT EXISTS (SELECT 1 FROM public.events e WHERE e.id = NEW.id AND e.matchmaking_enabled);
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER matchmaking_event_disabled
    AFTER UPDATE OF matchmaking_enabled ON public.events
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.matchmaking_enabled AND NOT NEW.matchmaking_enabled)
    EXECUTE FUNCTION public.matchmaking_event_disabled();

-- 2. and 3. Close the engine's tables, sequences and functions.
DO $$
DECLARE
    -- Supabase's Data API roles, where they exist.
    api_roles text := (
        SELECT string_agg(quote_ident(rolname), ', ' ORDER BY rolname)
        FROM pg_roles WHERE rolname IN ('anon', 'authenticated'));
    grantees text := 'PUBLIC' || coalesce(', ' || api_roles, '');
    obj record;
BEGIN
    FOR obj IN
        SELECT c.oid::regclass AS name, c.relname, c.relkind
        FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace
          AND c.relkind IN ('r', 'p', 'S')
          AND c.relname LIKE 'matchmaking\_%'
        ORDER BY c.relname
    LOOP
        IF obj.relkind = 'S' THEN
            EXECUTE format('REVOKE ALL ON SEQUENCE %s FROM %s', obj.name, grantees);
        ELSE
            EXECUTE format('REVOKE ALL ON TABLE %s FROM %s', obj.name, grantees);
            -- The exceptions: the tables the worker fills with COPY, which
            -- PostgreSQL refuses ("COPY FROM not supported with row-level
            -- security") to a role that RLS applies to, and the worker is
            -- not the owner. They keep the revokes.
            IF obj.relname NOT IN ('matchmaking_staged_matches') THEN
                EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', obj.name);
            END IF;
        END IF;
    END LOOP;

    FOR obj IN
        SELECT p.oid::regprocedure AS name
        FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace
          AND (p.proname LIKE 'matchmaking\_%'
               OR p.proname IN ('enqueue_event_matchmaking', 'get_matchmaking_queue_stats', 'get_detailed_queue_info'))
        ORDER BY 1
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %s', obj.name, grantees);
    END LOOP;
END;
$$;

-- 4. matches: members read their own list, nobody but the engine writes.
ALTER TABLE public.matches ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON TABLE public.matches FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        REVOKE ALL ON TABLE public.matches FROM anon;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE public.matches FROM authenticated;
        IF to_regprocedure('auth.uid()') IS NOT NULL THEN
            -- The policy is useless without the grant, whatever the default
            -- privileges were when matches was created.
            GRANT SELECT ON TABLE public.matches TO authenticated;
            IF NOT EXISTS (SELECT 1 FROM pg_policies
                           WHERE schemaname = 'public' AND tablename = 'matches'
                             AND policyname = 'matches_member_reads_own') THEN
                -- (SELECT auth.uid()) is evaluated once per statement, not per row.
                CREATE POLICY matches_member_reads_own ON public.matches
                    FOR SELECT TO authenticated
                    USING (user_id = (SELECT auth.uid()));
            END IF;
        END IF;
    END IF;
END;
$$;
