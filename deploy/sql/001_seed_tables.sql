-- The seed's tables, exactly as the seed (docs: ../shared/seed/architecture.md §3) defines
-- them, so that every existing writer (Yuxi-Know's Config.save(), psql) keeps working.
-- IF NOT EXISTS: safe on a database where they already hold data.
CREATE TABLE IF NOT EXISTS system_configs (
    id SERIAL PRIMARY KEY,
    key VARCHAR(255) UNIQUE NOT NULL,
    value JSONB NOT NULL,
    category VARCHAR(50),
    updated_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_config_category ON system_configs(category);

CREATE TABLE IF NOT EXISTS global_metadata (
    id SERIAL PRIMARY KEY,
    key VARCHAR(255) UNIQUE NOT NULL,
    content JSONB NOT NULL,
    updated_at TIMESTAMP DEFAULT NOW()
);
