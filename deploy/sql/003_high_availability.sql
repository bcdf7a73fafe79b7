-- High availability: the relay's fencing tokens, and the record of histories rewound by a
-- failover (docs/operations.md, "High availability").

-- The relay draws its fencing token here, not from Redis: an INCR acknowledged by a Redis
-- primary that dies before replicating it is handed out again by the promoted replica.
-- It starts at the clock in microseconds, above every token the Redis counter (raised to
-- the Redis server's clock in microseconds) gave before this migration.
DO $$
BEGIN
    IF to_regclass('yuxi_config_relay_fence') IS NULL THEN
        EXECUTE format('CREATE SEQUENCE yuxi_config_relay_fence START WITH %s',
                       (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
    END IF;
END $$;

-- One row per rewind an agent detected: the database (after a failover) no longer held
-- revisions first_lost..last_applied as the agent had applied them. `yuxi-configctl log
-- status` shows them. Agents insert best-effort (a read-only role just skips it).
CREATE TABLE IF NOT EXISTS yuxi_config_rewinds (
    id BIGSERIAL PRIMARY KEY,
    detected_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    detected_by TEXT,
    first_lost BIGINT NOT NULL,
    last_applied BIGINT NOT NULL,
    database_revision BIGINT NOT NULL,
    UNIQUE (first_lost, last_applied, database_revision)
);
