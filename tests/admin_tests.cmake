# yuxi-configctl's admin commands (label `admin`): schema apply, set/delete/history/rollback,
# log, migrate/export against a fresh database per test on YUXI_TEST_DATABASE_URL's server,
# with the real agent where a segment is involved; lock, agents and --wait-all against
# YUXI_TEST_REDIS_HOST/PORT's Redis. Each test skips when its server is not configured.
if(TARGET yuxi-configctl AND TARGET yuxi-config-agent AND TARGET yuxi_config_lock)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
  find_package(nlohmann_json 3 REQUIRED)

  foreach(name admin_write_test admin_migrate_test admin_redis_test)
    add_executable(${name} integration/${name}.cpp)
    target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration)
    target_link_libraries(${name} PRIVATE yuxi::config PkgConfig::LIBPQ
      nlohmann_json::nlohmann_json GTest::gtest_main)
    target_compile_definitions(${name} PRIVATE
      YUXI_CONFIGCTL="$<TARGET_FILE:yuxi-configctl>"
      YUXI_AGENT_BIN="$<TARGET_FILE:yuxi-config-agent>"
      YUXI_SQL_DIR="${PROJECT_SOURCE_DIR}/deploy/sql"
      YUXI_SAMPLES_DIR="${PROJECT_SOURCE_DIR}/samples"
      YUXI_ADMIN_FIXTURES_DIR="${CMAKE_CURRENT_SOURCE_DIR}/fixtures/yuxi-know")
    add_dependencies(${name} yuxi-configctl yuxi-config-agent)
    yuxi_config_warnings(${name})
    gtest_discover_tests(${name} PROPERTIES LABELS admin TIMEOUT 240 DISCOVERY_TIMEOUT 60)
  endforeach()
  # The agent's file-mode code, to compare what it makes of the files with the database.
  target_link_libraries(admin_migrate_test PRIVATE yuxi_agent)
  target_link_libraries(admin_redis_test PRIVATE yuxi::config_lock)
endif()
