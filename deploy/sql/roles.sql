-- Least privilege (docs/security.md, "PostgreSQL roles"): two roles that log in through
-- roles of your own (GRANT yuxi_config_agent TO <login>). Applied by
-- `yuxi-configctl schema apply --roles` after the migrations; idempotent. Not a numbered
-- migration: roles belong to the cluster, and a database restored elsewhere may want
-- other names.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'yuxi_config_agent') THEN
        CREATE ROLE yuxi_config_agent NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'yuxi_config_admin') THEN
        CREATE ROLE yuxi_config_admin NOLOGIN;
    END IF;
EXCEPTION WHEN unique_violation THEN
    NULL;  -- another `schema apply --roles` created them at the same moment
END $$;

-- The agents: read both tables and the log, LISTEN (which needs no privilege), and, for
-- the relay, trim the log (DELETE old rows, move the watermark).
GRANT SELECT ON system_configs, global_metadata, yuxi_config_changes, yuxi_config_log_state
    TO yuxi_config_agent;
GRANT DELETE ON yuxi_config_changes TO yuxi_config_agent;
GRANT UPDATE ON yuxi_config_log_state TO yuxi_config_agent;
GRANT EXECUTE ON FUNCTION yuxi_config_lock_key() TO yuxi_config_agent;

-- Admins (yuxi-configctl set, delete, rollback, history, log, migrate, export; the admin
-- library; Yuxi-Know's own writes): write both tables, and so the log the triggers append
-- to in the writer's transaction (the log records the writer as changed_by); read it, trim
-- it.
GRANT SELECT, INSERT, UPDATE, DELETE ON system_configs, global_metadata TO yuxi_config_admin;
GRANT USAGE ON SEQUENCE system_configs_id_seq, global_metadata_id_seq,
    yuxi_config_changes_revision_seq TO yuxi_config_admin;
GRANT SELECT, INSERT, DELETE ON yuxi_config_changes TO yuxi_config_admin;
GRANT SELECT, UPDATE ON yuxi_config_log_state TO yuxi_config_admin;
GRANT SELECT ON yuxi_config_schema TO yuxi_config_admin;
GRANT EXECUTE ON FUNCTION yuxi_config_lock_key() TO yuxi_config_admin;

-- High availability (003): the relay draws its fencing token from the sequence; an agent
-- records a rewound history it found. Admins read those records (log status).
GRANT USAGE ON SEQUENCE yuxi_config_relay_fence TO yuxi_config_agent;
GRANT SELECT, INSERT ON yuxi_config_rewinds TO yuxi_config_agent;
GRANT USAGE ON SEQUENCE yuxi_config_rewinds_id_seq TO yuxi_config_agent;
GRANT SELECT ON yuxi_config_rewinds TO yuxi_config_admin;

-- Value schemas (004): admins write them (the triggers mirror them into global_metadata,
-- which admins may write already); agents read only that mirror.
GRANT SELECT, INSERT, UPDATE, DELETE ON yuxi_config_value_schemas TO yuxi_config_admin;
GRANT SELECT, UPDATE ON yuxi_config_value_schemas_state TO yuxi_config_admin;
