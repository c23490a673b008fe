-- A batch's staged lists are scratch: scoring writes them, the commit moves
-- them into matches in one transaction and deletes them, and a batch whose
-- staged rows are gone is scored again (CommitBatch compares their count
-- with what scoring wrote and reports the batch stale). Two costs of the
-- table bought nothing for that:
--
-- 1. Its foreign key to matchmaking_batches checked every staged row: a
--    50,000-member event stages 150,000 rows, and the check was a third to
--    a half of writing them (scripts/write-costs.sh). The cascade it gave
--    (a batch, or its event, deleted or truncated takes its staged rows
--    along) is kept by statement triggers instead, which act once per
--    statement. Nothing else needs the key: staging updates the batch's row
--    first, in the same transaction, so a batch deleted meanwhile waits for
--    the staging to end and then takes its rows along, and a batch already
--    deleted stages nothing.
-- 2. Its rows went to the write-ahead log, a quarter to a half of the
--    rest of the write. UNLOGGED writes none. A crash (or a failover to a
--    standby, which never had the rows) empties the table; the commit then
--    finds fewer staged rows than scoring wrote and the batch is scored
--    again. Insights written onto staged rows come back from
--    matchmaking_insight_cache.
DO $$
DECLARE
    fk name;
BEGIN
    FOR fk IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'public.matchmaking_staged_matches'::regclass
          AND confrelid = 'public.matchmaking_batches'::regclass
          AND contype = 'f'
    LOOP
        EXECUTE format('ALTER TABLE public.matchmaking_staged_matches DROP CONSTRAINT %I', fk);
    END LOOP;
END;
$$;

CREATE FUNCTION public.matchmaking_batches_deleted() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
    DELETE FROM public.matchmaking_staged_matches s
    USING deleted_batches d
    WHERE s.token = d.token;
    RETURN NULL;
END;
$$;

CREATE TRIGGER matchmaking_batches_deleted
    AFTER DELETE ON public.matchmaking_batches
    REFERENCING OLD TABLE AS deleted_batches
    FOR EACH STATEMENT EXECUTE FUNCTION public.matchmaking_batches_deleted();

-- TRUNCATE matchmaking_batches CASCADE emptied the staged rows through the
-- key too (it still empties matchmaking_batch_shards that way).
CREATE FUNCTION public.matchmaking_batches_truncated() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
    TRUNCATE public.matchmaking_staged_matches;
    RETURN NULL;
END;
$$;

CREATE TRIGGER matchmaking_batches_truncated
    AFTER TRUNCATE ON public.matchmaking_batches
    FOR EACH STATEMENT EXECUTE FUNCTION public.matchmaking_batches_truncated();

-- Batches already deleted left no rows behind (the key saw to that), so
-- there is nothing to clean up before the change.
ALTER TABLE public.matchmaking_staged_matches SET UNLOGGED;

-- Closed as 007 closes the engine's objects: nobody but the owner executes
-- the new functions.
DO $$
DECLARE
    api_roles text := (
        SELECT string_agg(quote_ident(rolname), ', ' ORDER BY rolname)
        FROM pg_roles WHERE rolname IN ('anon', 'authenticated'));
    grantees text := 'PUBLIC' || coalesce(', ' || api_roles, '');
BEGIN
    EXECUTE format('REVOKE ALL ON FUNCTION public.matchmaking_batches_deleted() FROM %s', grantees);
    EXECUTE format('REVOKE ALL ON FUNCTION public.matchmaking_batches_truncated() FROM %s', grantees);
END;
$$;
