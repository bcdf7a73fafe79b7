# yuxi-configctl end to end (label `cli`), and a check that the test servers answer.
if(TARGET yuxi-configctl)
  yuxi_config_add_gtest(cli_requests_test SOURCE unit/cli_requests_test.cpp LABEL cli
    LIBS yuxi_configctl_requests STANDALONE)
  yuxi_config_add_gtest(configctl_test SOURCE integration/configctl_test.cpp LABEL cli
    LIBS yuxi_agent nlohmann_json::nlohmann_json)
endif()

# PostgreSQL and Redis started by scripts/test-servers answer; skipped (exit 77) without
# YUXI_TEST_DATABASE_URL / YUXI_TEST_REDIS_PORT.
add_test(NAME test_servers_answer COMMAND ${PROJECT_SOURCE_DIR}/scripts/check-test-servers)
set_tests_properties(test_servers_answer PROPERTIES LABELS servers SKIP_RETURN_CODE 77
  TIMEOUT 30)
