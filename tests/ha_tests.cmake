# High availability (label `ha`): private PostgreSQL primaries and streaming standbys,
# private Redis primaries with a replica and three Sentinels, all started by the tests
# (PostgreSQL 15's programs and redis-server; skipped without them). Failovers run with
# short timeouts (Sentinel down-after-milliseconds 1000) to keep the label to minutes.
if(TARGET yuxi-config-agent AND TARGET yuxi-configctl)
  yuxi_config_add_gtest(ha_postgres_test SOURCE integration/ha_postgres_test.cpp LABEL ha
    TIMEOUT 180 LIBS yuxi::config yuxi::config_lock PkgConfig::LIBPQ)
  yuxi_config_add_gtest(ha_sentinel_test SOURCE integration/ha_sentinel_test.cpp LABEL ha
    TIMEOUT 240 LIBS yuxi::config yuxi::config_lock PkgConfig::LIBPQ
    DEFINITIONS YUXI_LOCK_HOLDER_BIN="$<TARGET_FILE:lock_holder>")
  add_dependencies(ha_sentinel_test lock_holder)
endif()
if(TARGET yuxi_agent)
  yuxi_config_add_gtest(ha_unit_test SOURCE unit/ha_unit_test.cpp LABEL ha
    LIBS yuxi_agent yuxi::config_lock)
endif()
