# yuxi-configctl's admin commands (label `admin`): schema apply, set/delete/history/rollback,
# log, migrate/export against a fresh database per test on YUXI_TEST_DATABASE_URL's server,
# with the real agent where a segment is involved; lock, agents and --wait-all against
# YUXI_TEST_REDIS_HOST/PORT's Redis. Each test skips when its server is not configured.
if(TARGET yuxi-configctl AND TARGET yuxi-config-agent AND TARGET yuxi_config_lock)
  foreach(name admin_write_test admin_migrate_test admin_redis_test)
    yuxi_config_add_gtest(${name} SOURCE integration/${name}.cpp LABEL admin TIMEOUT 240
      LIBS yuxi::config PkgConfig::LIBPQ nlohmann_json::nlohmann_json)
  endforeach()
  # The agent's file-mode code, to compare what it makes of the files with the database.
  target_link_libraries(admin_migrate_test PRIVATE yuxi_agent)
  target_link_libraries(admin_redis_test PRIVATE yuxi::config_lock yuxi_config_core)
  # The admin library itself, with real agents (and a private Redis for the fleet).
  yuxi_config_add_gtest(admin_library_test SOURCE integration/admin_library_test.cpp
    LABEL admin TIMEOUT 240 LIBS yuxi::config_admin PkgConfig::LIBPQ nlohmann_json::nlohmann_json)
endif()
