-- AI insights already paid for. A pair's entry is reused while both
-- profiles (by hash of what the prompt sends), the model and the prompt
-- version are unchanged; editing a profile changes its hash, so only the
-- pairs that involve it miss. first_hash <= second_hash orders the pair.
CREATE TABLE matchmaking_insight_cache (
    first_hash     text NOT NULL,
    second_hash    text NOT NULL,
    model          text NOT NULL,
    prompt_version text NOT NULL,
    for_first      text NOT NULL,
    for_second     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (first_hash, second_hash, model, prompt_version),
    CHECK (first_hash <= second_hash)
);
