-- A local stand-in for what a Supabase project has before the engine is
-- migrated into it, for trying the engine (and testing it) the way a new
-- Supabase user meets it: the Data API roles with Supabase's default grants
-- on public, and an auth.uid() that reads the signed-in user from the
-- request's JWT claims as Supabase's does.
--
-- Run it in the application's database, before `starter migrate`, as the
-- role that will migrate (on Supabase that is `postgres`): the default
-- privileges below apply to the objects that role creates, which is what
-- makes every new table and function reachable by anon and authenticated
-- unless the migration closes it.
--
--   psql "$DATABASE_LISTEN_URL" -f deploy/postgres/supabase-like.sql
--
-- Roles belong to the whole server: they are created once and kept.
-- A signed-in request is `SET ROLE authenticated` plus the user's id in
-- request.jwt.claim.sub (PostgREST sets both per transaction).

DO $$
BEGIN
    CREATE ROLE anon NOLOGIN NOINHERIT;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; -- exists, or made at this moment by another session
END;
$$;
DO $$
BEGIN
    CREATE ROLE authenticated NOLOGIN NOINHERIT;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END;
$$;
DO $$
BEGIN
    CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END;
$$;

CREATE SCHEMA IF NOT EXISTS auth;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;

-- Supabase's auth.uid(): the JWT's subject, or NULL for anon.
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;

-- Supabase's grants on public: everything that exists, and everything the
-- migrating role creates from now on.
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL FUNCTIONS IN SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
