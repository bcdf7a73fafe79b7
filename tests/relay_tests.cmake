# The relay (label `relay`): agents against a real PostgreSQL (YUXI_TEST_DATABASE_URL's
# server) and private redis-servers each test starts; skipped without them. The Redis
# documents' unit test is labelled `agent`.
if(TARGET yuxi-config-agent)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)

  add_executable(change_message_test unit/change_message_test.cpp)
  target_link_libraries(change_message_test PRIVATE yuxi_agent GTest::gtest_main)
  yuxi_config_warnings(change_message_test)
  gtest_discover_tests(change_message_test PROPERTIES LABELS agent DISCOVERY_TIMEOUT 60)

  add_executable(relay_test integration/relay_test.cpp)
  target_include_directories(relay_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration)
  target_link_libraries(relay_test PRIVATE yuxi::config yuxi::config_lock PkgConfig::LIBPQ
    GTest::gtest_main)
  target_compile_definitions(relay_test PRIVATE
    YUXI_AGENT_BIN="$<TARGET_FILE:yuxi-config-agent>"
    YUXI_CONFIGCTL_BIN="$<TARGET_FILE:yuxi-configctl>"
    YUXI_SQL_DIR="${PROJECT_SOURCE_DIR}/deploy/sql"
    YUXI_FUZZ_CORPUS="${PROJECT_SOURCE_DIR}/tests/fuzz/corpus")
  add_dependencies(relay_test yuxi-config-agent yuxi-configctl)
  yuxi_config_warnings(relay_test)
  gtest_discover_tests(relay_test PROPERTIES LABELS relay TIMEOUT 120 DISCOVERY_TIMEOUT 60)
endif()
