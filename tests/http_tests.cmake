# The agent's HTTP surface and logging (label `http`): the metrics registry and its
# exposition as unit tests (checked by the strict parser of support/exposition_parser.hpp),
# then the real agent binary: probes, /metrics against the segment, readiness following
# PostgreSQL (a private server; skipped without PostgreSQL's programs), slow and hostile
# clients, SIGTERM during updates, and the log's redaction in both formats.
if(TARGET yuxi-config-agent)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)

  add_executable(metrics_test unit/metrics_test.cpp)
  target_link_libraries(metrics_test PRIVATE yuxi_agent GTest::gtest_main)
  yuxi_config_warnings(metrics_test)
  gtest_discover_tests(metrics_test PROPERTIES LABELS http DISCOVERY_TIMEOUT 60)

  foreach(name http_test logging_test)
    add_executable(${name} integration/${name}.cpp)
    target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration)
    target_link_libraries(${name} PRIVATE yuxi::config PkgConfig::LIBPQ nlohmann_json::nlohmann_json
      GTest::gtest_main)
    target_compile_definitions(${name} PRIVATE
      YUXI_AGENT_BIN="$<TARGET_FILE:yuxi-config-agent>"
      YUXI_SQL_DIR="${PROJECT_SOURCE_DIR}/deploy/sql")
    add_dependencies(${name} yuxi-config-agent)
    yuxi_config_warnings(${name})
    gtest_discover_tests(${name} PROPERTIES LABELS http TIMEOUT 120 DISCOVERY_TIMEOUT 60)
  endforeach()
  # The formatter's unit tests link the agent's library.
  target_link_libraries(logging_test PRIVATE yuxi_agent)
endif()
