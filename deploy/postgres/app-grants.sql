-- What the web app's role may do, run by the Compose service app-grants as
-- the owner once `starter migrate` has made the tables: its own tables in
-- full, and reading matches. Nothing of the engine: the member triggers
-- enqueue with their owner's rights. Re-running it changes nothing.
GRANT USAGE ON SCHEMA public TO matchmaker_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.events, public.all_events_members TO matchmaker_app;
GRANT SELECT ON public.matches TO matchmaker_app;

-- matches has row level security (migration 007): without a policy a role
-- that does not own it reads no rows. The app's server reads every list and
-- shows each member theirs.
DROP POLICY IF EXISTS matchmaker_app_reads_matches ON public.matches;
CREATE POLICY matchmaker_app_reads_matches ON public.matches FOR SELECT TO matchmaker_app USING (true);

-- Members' declines, blocks and "already met" (match_exclusions) and the
-- organiser's rules on who meets whom (match_rules), migration 009: the
-- app's server writes both, for its members and its organisers. Both have
-- row level security, so it needs a policy of its own here too.
GRANT SELECT, INSERT, UPDATE, DELETE ON public.match_exclusions, public.match_rules TO matchmaker_app;
DROP POLICY IF EXISTS matchmaker_app_writes_exclusions ON public.match_exclusions;
CREATE POLICY matchmaker_app_writes_exclusions ON public.match_exclusions FOR ALL TO matchmaker_app
    USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS matchmaker_app_writes_rules ON public.match_rules;
CREATE POLICY matchmaker_app_writes_rules ON public.match_rules FOR ALL TO matchmaker_app
    USING (true) WITH CHECK (true);
