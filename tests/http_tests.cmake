# The agent's HTTP surface and logging (label `http`): the metrics registry and its
# exposition as unit tests (checked by the strict parser of support/exposition_parser.hpp),
# then the real agent binary: probes, /metrics against the segment, readiness following
# PostgreSQL (a private server; skipped without PostgreSQL's programs), slow and hostile
# clients, SIGTERM during updates, and the log's redaction in both formats.
if(TARGET yuxi-config-agent)
  yuxi_config_add_gtest(metrics_test SOURCE unit/metrics_test.cpp LABEL http LIBS yuxi_agent)
  foreach(name http_test logging_test)
    yuxi_config_add_gtest(${name} SOURCE integration/${name}.cpp LABEL http TIMEOUT 120
      LIBS yuxi::config PkgConfig::LIBPQ nlohmann_json::nlohmann_json)
  endforeach()
  # The formatter's unit tests link the agent's library.
  target_link_libraries(logging_test PRIVATE yuxi_agent)
endif()
