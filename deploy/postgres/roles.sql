-- The roles of the Compose stack, one per job (README, "Roles"). The
-- postgres image runs this once, when it initialises a new volume, as its
-- superuser in the app's database. Passwords equal to the names are for this
-- local stack only: its ports listen on 127.0.0.1.
--
--   matchmaker_owner   runs `starter migrate` and so owns the engine's tables
--                      and functions; runs `starter grant-worker` and the
--                      operator's commands
--   matchmaker_worker  the worker: what `starter grant-worker` gives it, and
--                      nothing to create or drop anything
--   matchmaker_app     the web app: its own tables, and reading matches
--                      (deploy/postgres/app-grants.sql, after the migration)
--
-- Re-running it changes nothing.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['matchmaker_owner', 'matchmaker_worker', 'matchmaker_app'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', r, r);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- exists already
        END;
    END LOOP;
    -- The owner owns the database and so, from PostgreSQL 15 on, its public
    -- schema: it may create the engine's objects there, nobody else may.
    EXECUTE format('ALTER DATABASE %I OWNER TO matchmaker_owner', current_database());
END;
$$;
