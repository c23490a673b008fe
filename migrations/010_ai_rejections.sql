-- Why the backfill's model answers were rejected, counted per event and
-- rule (insight.InvalidAnswerError's Rule: "name", "length", "json", ...),
-- so that `starter status` can show an operator whether a model misses the
-- name, writes too much or breaks the JSON, across workflow runs and worker
-- restarts. A JSON object of rule to count of rejected answers (one per
-- pair asked, not per direction).
ALTER TABLE matchmaking_ai_backfill ADD COLUMN rejections jsonb NOT NULL DEFAULT '{}';
