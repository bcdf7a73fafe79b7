-- The change log (also the audit trail and the history), and the triggers that fill it
-- and wake the agents. Every writer is caught, whether it knows of yuxi-config or not.

CREATE TABLE IF NOT EXISTS yuxi_config_changes (
    revision BIGSERIAL PRIMARY KEY,
    namespace TEXT NOT NULL CHECK (namespace IN ('config', 'metadata')),
    key TEXT NOT NULL,
    op CHAR(1) NOT NULL CHECK (op IN ('U', 'D')),  -- upsert or delete
    old_value JSONB,
    new_value JSONB,
    category TEXT,  -- system_configs.category after the change (config only)
    changed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    changed_by TEXT NOT NULL DEFAULT current_user
);
CREATE INDEX IF NOT EXISTS yuxi_config_changes_key
    ON yuxi_config_changes (namespace, key, revision);

-- One row: the highest revision `log trim` has deleted. An agent whose applied revision
-- is below it cannot catch up from the log and does a full resync. (Revisions have holes
-- where a transaction rolled back, so a gap in the log alone does not mean a trim.)
CREATE TABLE IF NOT EXISTS yuxi_config_log_state (
    id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    trimmed_through BIGINT NOT NULL DEFAULT 0
);
INSERT INTO yuxi_config_log_state (id) VALUES (TRUE) ON CONFLICT DO NOTHING;

-- The advisory lock key every writer of the log takes before drawing a revision. A
-- sequence hands out numbers at insert time, not at commit, so without it two writers
-- could commit 8 before 7 and a reader that saw 8 would skip 7 forever. The lock is held
-- to the end of the transaction, so revisions commit in order.
CREATE OR REPLACE FUNCTION yuxi_config_lock_key() RETURNS BIGINT
    LANGUAGE sql IMMUTABLE AS $$ SELECT 7956331478243718000::bigint $$;

CREATE OR REPLACE FUNCTION yuxi_config_append(
    p_namespace TEXT, p_key TEXT, p_op CHAR(1), p_old JSONB, p_new JSONB, p_category TEXT)
    RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    rev BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(yuxi_config_lock_key());
    INSERT INTO yuxi_config_changes (namespace, key, op, old_value, new_value, category)
        VALUES (p_namespace, p_key, p_op, p_old, p_new, p_category)
        RETURNING revision INTO rev;
    -- The payload is a wake-up, never the data (NOTIFY payloads are limited to 8000
    -- bytes and are lost while a listener is away): agents catch up by revision.
    PERFORM pg_notify('yuxi_config', rev::text);
    -- The writer's own transaction can read the revision it produced (read-your-write).
    PERFORM set_config('yuxi_config.revision', rev::text, true);
    RETURN rev;
END $$;

CREATE OR REPLACE FUNCTION yuxi_config_log_row() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    ns TEXT := CASE TG_TABLE_NAME WHEN 'system_configs' THEN 'config' ELSE 'metadata' END;
    col TEXT := CASE TG_TABLE_NAME WHEN 'system_configs' THEN 'value' ELSE 'content' END;
    old_v JSONB;
    new_v JSONB;
    old_cat TEXT;
    new_cat TEXT;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        old_v := to_jsonb(OLD) -> col;
        old_cat := to_jsonb(OLD) ->> 'category';
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        new_v := to_jsonb(NEW) -> col;
        new_cat := to_jsonb(NEW) ->> 'category';
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.key = NEW.key AND old_v = new_v
       AND old_cat IS NOT DISTINCT FROM new_cat THEN
        RETURN NULL;  -- nothing readers can see changed (e.g. only updated_at)
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.key <> NEW.key) THEN
        PERFORM yuxi_config_append(ns, OLD.key, 'D', old_v, NULL, NULL);
    END IF;
    IF TG_OP = 'INSERT' OR TG_OP = 'UPDATE' THEN
        PERFORM yuxi_config_append(ns, NEW.key, 'U',
            CASE WHEN TG_OP = 'UPDATE' AND OLD.key = NEW.key THEN old_v END, new_v, new_cat);
    END IF;
    RETURN NULL;
END $$;

-- TRUNCATE fires no row triggers: log every row as deleted before it goes.
CREATE OR REPLACE FUNCTION yuxi_config_log_truncate() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    r RECORD;
BEGIN
    IF TG_TABLE_NAME = 'system_configs' THEN
        FOR r IN SELECT key, value AS v FROM system_configs ORDER BY key LOOP
            PERFORM yuxi_config_append('config', r.key, 'D', r.v, NULL, NULL);
        END LOOP;
    ELSE
        FOR r IN SELECT key, content AS v FROM global_metadata ORDER BY key LOOP
            PERFORM yuxi_config_append('metadata', r.key, 'D', r.v, NULL, NULL);
        END LOOP;
    END IF;
    RETURN NULL;
END $$;

-- Every statement that writes either table takes the lock before it locks any row. The
-- row trigger alone would take it after the row lock, and two multi-row writers would
-- deadlock (one holds the lock and waits for a row the other holds).
CREATE OR REPLACE FUNCTION yuxi_config_lock_statement() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(yuxi_config_lock_key());
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS yuxi_config_lock ON system_configs;
CREATE TRIGGER yuxi_config_lock BEFORE INSERT OR UPDATE OR DELETE ON system_configs
    FOR EACH STATEMENT EXECUTE FUNCTION yuxi_config_lock_statement();
DROP TRIGGER IF EXISTS yuxi_config_lock ON global_metadata;
CREATE TRIGGER yuxi_config_lock BEFORE INSERT OR UPDATE OR DELETE ON global_metadata
    FOR EACH STATEMENT EXECUTE FUNCTION yuxi_config_lock_statement();

DROP TRIGGER IF EXISTS yuxi_config_log ON system_configs;
CREATE TRIGGER yuxi_config_log AFTER INSERT OR UPDATE OR DELETE ON system_configs
    FOR EACH ROW EXECUTE FUNCTION yuxi_config_log_row();
DROP TRIGGER IF EXISTS yuxi_config_log_truncate ON system_configs;
CREATE TRIGGER yuxi_config_log_truncate BEFORE TRUNCATE ON system_configs
    FOR EACH STATEMENT EXECUTE FUNCTION yuxi_config_log_truncate();

DROP TRIGGER IF EXISTS yuxi_config_log ON global_metadata;
CREATE TRIGGER yuxi_config_log AFTER INSERT OR UPDATE OR DELETE ON global_metadata
    FOR EACH ROW EXECUTE FUNCTION yuxi_config_log_row();
DROP TRIGGER IF EXISTS yuxi_config_log_truncate ON global_metadata;
CREATE TRIGGER yuxi_config_log_truncate BEFORE TRUNCATE ON global_metadata
    FOR EACH STATEMENT EXECUTE FUNCTION yuxi_config_log_truncate();
