# yuxi-configctl end to end (label `cli`), and a check that the test servers answer.
if(TARGET yuxi-configctl)
  find_package(nlohmann_json 3 REQUIRED)
  add_executable(configctl_test integration/configctl_test.cpp)
  target_link_libraries(configctl_test PRIVATE yuxi_agent nlohmann_json::nlohmann_json
    GTest::gtest_main)
  target_compile_definitions(configctl_test PRIVATE
    YUXI_CONFIGCTL="$<TARGET_FILE:yuxi-configctl>")
  add_dependencies(configctl_test yuxi-configctl)
  yuxi_config_warnings(configctl_test)
  gtest_discover_tests(configctl_test PROPERTIES LABELS cli DISCOVERY_TIMEOUT 60)
endif()

# PostgreSQL and Redis started by scripts/test-servers answer; skipped (exit 77) without
# YUXI_TEST_DATABASE_URL / YUXI_TEST_REDIS_PORT.
add_test(NAME test_servers_answer COMMAND ${PROJECT_SOURCE_DIR}/scripts/check-test-servers)
set_tests_properties(test_servers_answer PROPERTIES LABELS servers SKIP_RETURN_CODE 77
  TIMEOUT 30)
