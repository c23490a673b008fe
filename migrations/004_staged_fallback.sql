-- Scoring writes each staged match's fallback insight along with it, from
-- the profiles it already holds, so the insight step needs no profile reads
-- when no AI is configured and has the fallback at hand when the AI fails.
ALTER TABLE matchmaking_staged_matches ADD COLUMN fallback_insight text;
