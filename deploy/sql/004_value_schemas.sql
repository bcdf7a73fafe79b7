-- JSON Schemas per key, and the writes of the admin library (include/yuxi/config/admin.hpp)
-- as functions, so that a checked write is one round trip.

-- One JSON Schema per key or key pattern (`*` matches any run of characters). Writers
-- (yuxi-configctl, the C++ and Python Admin, the file writer) refuse a value that breaks
-- its key's schema; agents refuse one that slipped past (raw SQL) and keep the key's last
-- good value.
CREATE TABLE IF NOT EXISTS yuxi_config_value_schemas (
    namespace TEXT NOT NULL DEFAULT 'config' CHECK (namespace IN ('config', 'metadata')),
    pattern TEXT NOT NULL CHECK (length(pattern) BETWEEN 1 AND 255),
    schema JSONB NOT NULL,
    updated_by TEXT NOT NULL DEFAULT current_user,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, pattern)
);

-- One row: bumped by every change of the schemas, so that a writer can tell, in the
-- transaction of its write, whether the schemas it validated with are still current.
CREATE TABLE IF NOT EXISTS yuxi_config_value_schemas_state (
    id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    version BIGINT NOT NULL DEFAULT 0
);
INSERT INTO yuxi_config_value_schemas_state (id) VALUES (TRUE) ON CONFLICT DO NOTHING;

-- The agents read no table but the two the seed defines: the schemas reach them as the
-- metadata document 'yuxi_config.value_schemas' ({"v":1,"schemas":[{namespace, pattern,
-- schema}]}), rewritten after every change of the table. It is logged and pushed like any
-- metadata, so followers, the L2 snapshot and resyncs carry it without a new path, and a
-- segment at revision R holds the schemas of revision R.
CREATE OR REPLACE FUNCTION yuxi_config_mirror_value_schemas() RETURNS TRIGGER
    LANGUAGE plpgsql AS $$
DECLARE
    doc JSONB;
BEGIN
    -- Taken before the table is read: two writers of schemas never mirror each other's
    -- stale view (the second reads after the first commits).
    PERFORM pg_advisory_xact_lock(yuxi_config_lock_key());
    SELECT jsonb_build_object('v', 1, 'schemas', coalesce(jsonb_agg(jsonb_build_object(
               'namespace', s.namespace, 'pattern', s.pattern, 'schema', s.schema)
               ORDER BY s.namespace, s.pattern), '[]'::jsonb))
        INTO doc FROM yuxi_config_value_schemas s;
    IF doc -> 'schemas' = '[]'::jsonb THEN
        DELETE FROM global_metadata WHERE key = 'yuxi_config.value_schemas';
    ELSE
        INSERT INTO global_metadata (key, content, updated_at)
            VALUES ('yuxi_config.value_schemas', doc, now())
            ON CONFLICT (key) DO UPDATE SET content = EXCLUDED.content, updated_at = now();
    END IF;
    UPDATE yuxi_config_value_schemas_state SET version = version + 1;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS yuxi_config_lock ON yuxi_config_value_schemas;
CREATE TRIGGER yuxi_config_lock BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON yuxi_config_value_schemas
    FOR EACH STATEMENT EXECUTE FUNCTION yuxi_config_lock_statement();
DROP TRIGGER IF EXISTS yuxi_config_mirror ON yuxi_config_value_schemas;
CREATE TRIGGER yuxi_config_mirror AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON yuxi_config_value_schemas
    FOR EACH STATEMENT EXECUTE FUNCTION yuxi_config_mirror_value_schemas();

-- The revision to compare a compare-and-set with: the key's last change in the log, or,
-- when the log has none (trimmed, or written before the log existed), the trim watermark.
CREATE OR REPLACE FUNCTION yuxi_config_key_revision(p_namespace TEXT, p_key TEXT)
    RETURNS BIGINT LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT max(revision) FROM yuxi_config_changes
          WHERE namespace = p_namespace AND key = p_key),
        (SELECT trimmed_through FROM yuxi_config_log_state), 0)
$$;

-- One key, inside a caller that holds the log's lock. p_value NULL deletes. Unless
-- p_category_given, the key keeps its category, or a new key gets p_new_category.
-- Returns whether a row changed (the trigger then logged it and set yuxi_config.revision).
CREATE OR REPLACE FUNCTION yuxi_config_write_one(
    p_namespace TEXT, p_key TEXT, p_value JSONB, p_category TEXT, p_category_given BOOLEAN,
    p_new_category TEXT)
    RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    cur_value JSONB;
    cur_category TEXT;
    v_category TEXT;
BEGIN
    IF p_namespace = 'config' THEN
        SELECT c.value, c.category INTO cur_value, cur_category
            FROM system_configs c WHERE c.key = p_key;
    ELSE
        SELECT m.content INTO cur_value FROM global_metadata m WHERE m.key = p_key;
    END IF;
    IF NOT FOUND THEN
        IF p_value IS NULL THEN
            RETURN FALSE;
        END IF;
        v_category := CASE WHEN p_category_given THEN p_category ELSE p_new_category END;
    ELSE
        v_category := CASE WHEN p_category_given THEN p_category ELSE cur_category END;
        IF p_value IS NOT NULL AND cur_value = p_value
           AND (p_namespace = 'metadata' OR cur_category IS NOT DISTINCT FROM v_category) THEN
            RETURN FALSE;
        END IF;
    END IF;
    IF p_value IS NULL THEN
        IF p_namespace = 'config' THEN
            DELETE FROM system_configs WHERE key = p_key;
        ELSE
            DELETE FROM global_metadata WHERE key = p_key;
        END IF;
    ELSIF p_namespace = 'config' THEN
        INSERT INTO system_configs (key, value, category, updated_at)
            VALUES (p_key, p_value, v_category, now())
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value,
                category = EXCLUDED.category, updated_at = now();
    ELSE
        INSERT INTO global_metadata (key, content, updated_at) VALUES (p_key, p_value, now())
            ON CONFLICT (key) DO UPDATE SET content = EXCLUDED.content, updated_at = now();
    END IF;
    RETURN TRUE;
END $$;

-- A writer's checks, under the log's lock: the schemas it validated with are current
-- (p_schemas_version; NULL skips), and the compare-and-set (p_if_revision: the key's last
-- change is at most that; 0: the key does not exist; NULL skips). Returns the refusal
-- ('schemas' with the current version, 'conflict' with the key's revision) or NULL.
CREATE OR REPLACE FUNCTION yuxi_config_check(
    p_namespace TEXT, p_key TEXT, p_if_revision BIGINT, p_schemas_version BIGINT,
    OUT refusal TEXT, OUT at_revision BIGINT) LANGUAGE plpgsql AS $$
DECLARE
    exists_now BOOLEAN;
BEGIN
    IF p_schemas_version IS NOT NULL THEN
        SELECT s.version INTO at_revision FROM yuxi_config_value_schemas_state s;
        IF at_revision IS DISTINCT FROM p_schemas_version THEN
            refusal := 'schemas';
            RETURN;
        END IF;
    END IF;
    at_revision := NULL;
    IF p_if_revision IS NULL THEN
        RETURN;
    END IF;
    IF p_namespace = 'config' THEN
        exists_now := EXISTS (SELECT 1 FROM system_configs WHERE key = p_key);
    ELSE
        exists_now := EXISTS (SELECT 1 FROM global_metadata WHERE key = p_key);
    END IF;
    at_revision := yuxi_config_key_revision(p_namespace, p_key);
    IF (p_if_revision = 0 AND exists_now)
       OR (p_if_revision <> 0 AND (NOT exists_now OR at_revision > p_if_revision)) THEN
        refusal := 'conflict';
    ELSE
        at_revision := NULL;
    END IF;
END $$;

-- A set or a delete of one key in one round trip. status: 'written' (revision: the one it
-- made), 'unchanged' (revision: the key's last change), 'conflict' (revision: the key's
-- last change), 'schemas' (revision: the schemas' current version).
CREATE OR REPLACE FUNCTION yuxi_config_write(
    p_namespace TEXT, p_key TEXT, p_value JSONB, p_category TEXT, p_new_category TEXT,
    p_if_revision BIGINT, p_schemas_version BIGINT,
    OUT status TEXT, OUT revision BIGINT) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(yuxi_config_lock_key());
    -- The common case first, in as few statements as it takes: a config key that exists
    -- gets a new value, no compare-and-set.
    IF p_if_revision IS NULL AND p_value IS NOT NULL AND p_namespace = 'config' THEN
        IF p_schemas_version IS NOT NULL THEN
            SELECT s.version INTO revision FROM yuxi_config_value_schemas_state s;
            IF revision IS DISTINCT FROM p_schemas_version THEN
                status := 'schemas';
                RETURN;
            END IF;
        END IF;
        UPDATE system_configs c SET value = p_value,
               category = coalesce(p_category, c.category), updated_at = now()
         WHERE c.key = p_key AND (c.value <> p_value
               OR c.category IS DISTINCT FROM coalesce(p_category, c.category));
        IF FOUND THEN
            status := 'written';
            revision := current_setting('yuxi_config.revision')::BIGINT;
            RETURN;
        END IF;
        p_schemas_version := NULL;  -- checked
    END IF;
    SELECT c.refusal, c.at_revision INTO status, revision
        FROM yuxi_config_check(p_namespace, p_key, p_if_revision, p_schemas_version) c;
    IF status IS NOT NULL THEN
        RETURN;
    END IF;
    IF yuxi_config_write_one(p_namespace, p_key, p_value, p_category, p_category IS NOT NULL,
                             p_new_category) THEN
        status := 'written';
        revision := nullif(current_setting('yuxi_config.revision', true), '')::BIGINT;
    ELSE
        status := 'unchanged';
        revision := yuxi_config_key_revision(p_namespace, p_key);
    END IF;
END $$;

-- Many keys in one transaction (readers see them all at once, at the last revision it
-- made). p_items: [{"namespace","key","value" (absent: delete),"category" (absent: kept;
-- null: none),"new_category","if_revision"}]. Every check passes before anything is written; a refusal names its key.
CREATE OR REPLACE FUNCTION yuxi_config_write_many(p_items JSONB, p_schemas_version BIGINT,
    OUT status TEXT, OUT revision BIGINT, OUT namespace TEXT, OUT key TEXT)
    LANGUAGE plpgsql AS $$
DECLARE
    item JSONB;
    changed BOOLEAN := FALSE;
    newest BIGINT := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(yuxi_config_lock_key());
    FOR item IN SELECT e FROM jsonb_array_elements(p_items) e LOOP
        namespace := item ->> 'namespace';
        key := item ->> 'key';
        SELECT c.refusal, c.at_revision INTO status, revision
            FROM yuxi_config_check(namespace, key, (item ->> 'if_revision')::BIGINT,
                                   p_schemas_version) c;
        IF status IS NOT NULL THEN
            RETURN;
        END IF;
        p_schemas_version := NULL;  -- checked once
    END LOOP;
    namespace := NULL;
    key := NULL;
    FOR item IN SELECT e FROM jsonb_array_elements(p_items) e LOOP
        IF yuxi_config_write_one(item ->> 'namespace', item ->> 'key', item -> 'value',
                                 item ->> 'category', item ? 'category',
                                 item ->> 'new_category') THEN
            changed := TRUE;
        ELSE
            newest := greatest(newest,
                yuxi_config_key_revision(item ->> 'namespace', item ->> 'key'));
        END IF;
    END LOOP;
    IF changed THEN
        status := 'written';
        revision := nullif(current_setting('yuxi_config.revision', true), '')::BIGINT;
    ELSE
        status := 'unchanged';
        revision := newest;
    END IF;
END $$;
