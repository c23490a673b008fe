-- The web app's own row level security, as a Supabase app has it, for the
-- tests (migrations/supabase_test.go, e2e/supabase_test.go): signed-in users
-- read events and members, and a member inserts and updates only their own
-- row. Run after deploy/postgres/supabase-like.sql and the migrations.
ALTER TABLE public.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY events_read ON public.events FOR SELECT TO authenticated USING (true);
ALTER TABLE public.all_events_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY members_read ON public.all_events_members FOR SELECT TO authenticated USING (true);
CREATE POLICY members_insert_own ON public.all_events_members FOR INSERT TO authenticated
    WITH CHECK (user_id = (SELECT auth.uid()));
CREATE POLICY members_update_own ON public.all_events_members FOR UPDATE TO authenticated
    USING (user_id = (SELECT auth.uid())) WITH CHECK (user_id = (SELECT auth.uid()));
