-- members_version moves with every change to an event's members, so a
-- worker may keep the event's profiles in memory between batches and reload
-- them only when the version moved. The state row exists from an event's
-- first claim on, which is before any worker caches its members.
ALTER TABLE matchmaking_event_state ADD COLUMN members_version bigint NOT NULL DEFAULT 0;

CREATE FUNCTION matchmaking_members_version_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE matchmaking_event_state s SET members_version = s.members_version + 1
    WHERE s.event_id IN (SELECT DISTINCT event_id FROM changed_members);
    RETURN NULL;
END;
$$;

CREATE TRIGGER matchmaking_members_version_insert
    AFTER INSERT ON all_events_members
    REFERENCING NEW TABLE AS changed_members
    FOR EACH STATEMENT EXECUTE FUNCTION matchmaking_members_version_bump();

CREATE TRIGGER matchmaking_members_version_update
    AFTER UPDATE ON all_events_members
    REFERENCING NEW TABLE AS changed_members
    FOR EACH STATEMENT EXECUTE FUNCTION matchmaking_members_version_bump();

CREATE TRIGGER matchmaking_members_version_delete
    AFTER DELETE ON all_events_members
    REFERENCING OLD TABLE AS changed_members
    FOR EACH STATEMENT EXECUTE FUNCTION matchmaking_members_version_bump();
