# Database mode (label `database`): the agent against a real PostgreSQL (a fresh database
# per test on YUXI_TEST_DATABASE_URL's server; skipped without it), and fault injection on
# a private PostgreSQL the fault test starts itself (initdb as `postgres` when run as root;
# skipped without PostgreSQL's programs). The backoff's unit test is labelled `agent`.
if(TARGET yuxi-config-agent)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)

  add_executable(backoff_test unit/backoff_test.cpp)
  target_link_libraries(backoff_test PRIVATE yuxi_agent GTest::gtest_main)
  yuxi_config_warnings(backoff_test)
  gtest_discover_tests(backoff_test PROPERTIES LABELS agent DISCOVERY_TIMEOUT 60)

  foreach(source integration/database_mode_test fault/postgres_fault_test)
    get_filename_component(name ${source} NAME)
    add_executable(${name} ${source}.cpp)
    target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration)
    target_link_libraries(${name} PRIVATE yuxi::config PkgConfig::LIBPQ GTest::gtest_main)
    target_compile_definitions(${name} PRIVATE
      YUXI_AGENT_BIN="$<TARGET_FILE:yuxi-config-agent>"
      YUXI_SQL_DIR="${PROJECT_SOURCE_DIR}/deploy/sql")
    add_dependencies(${name} yuxi-config-agent)
    yuxi_config_warnings(${name})
    gtest_discover_tests(${name} PROPERTIES LABELS database TIMEOUT 240 DISCOVERY_TIMEOUT 60)
  endforeach()
endif()
