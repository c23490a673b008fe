-- Which staging of a batch its staged rows come from: every StageMatches
-- draws a new id and CommitBatch reports the one it committed, so a worker
-- that staged those very rows may take the lists it wrote into its copy
-- of the event in memory instead of reading them back, and a worker whose
-- staging was replaced (a retry of the score step, here or elsewhere) does
-- not.
ALTER TABLE matchmaking_batches ADD COLUMN stage_id uuid;
