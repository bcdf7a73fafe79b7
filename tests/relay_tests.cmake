# The relay (label `relay`): agents against a real PostgreSQL (YUXI_TEST_DATABASE_URL's
# server) and private redis-servers each test starts; skipped without them.
if(TARGET yuxi-config-agent AND TARGET yuxi-configctl)
  yuxi_config_add_gtest(relay_test SOURCE integration/relay_test.cpp LABEL relay TIMEOUT 120
    LIBS yuxi::config yuxi::config_lock yuxi_config_core PkgConfig::LIBPQ)
endif()

# Signed documents, key rotation and Redis ACLs against the same kind of fleet
# (label `security`).
if(TARGET yuxi-config-agent AND TARGET yuxi-configctl)
  yuxi_config_add_gtest(signing_test SOURCE integration/signing_test.cpp LABEL security
    TIMEOUT 180 LIBS yuxi::config yuxi::config_lock yuxi_config_core PkgConfig::LIBPQ)
endif()
