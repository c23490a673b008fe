-- Which staging of a batch its staged rows come from: every StageMatches
-- draws a new id and CommitBatch reports the one it committed, so a worker
-- that staged those very rows may take the lists it wrote into its copy
-- of the event in memory instead of reading them back, and a worker whose
-- staging was replaced (a retry of the score step, here or elsewhere) does
-- not.
ALTER TABLE public.matchmaking_batches ADD COLUMN stage_id uuid;

-- A worker of an earlier release, still running during a rollout, stages
-- without knowing the column: its staging must not keep the id of the one
-- it replaced. Every staging sets scored_at.
CREATE FUNCTION public.matchmaking_batches_stage_id_reset() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
    IF NEW.scored_at IS DISTINCT FROM OLD.scored_at AND NEW.stage_id IS NOT DISTINCT FROM OLD.stage_id THEN
        NEW.stage_id := NULL;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER matchmaking_batches_stage_id_reset
    BEFORE UPDATE ON public.matchmaking_batches
    FOR EACH ROW EXECUTE FUNCTION public.matchmaking_batches_stage_id_reset();

-- Closed as 007 closes the engine's objects: nobody but the owner executes
-- the new function.
DO $$
DECLARE
    api_roles text := (
        SELECT string_agg(quote_ident(rolname), ', ' ORDER BY rolname)
        FROM pg_roles WHERE rolname IN ('anon', 'authenticated'));
    grantees text := 'PUBLIC' || coalesce(', ' || api_roles, '');
BEGIN
    EXECUTE format('REVOKE ALL ON FUNCTION public.matchmaking_batches_stage_id_reset() FROM %s', grantees);
END;
$$;
