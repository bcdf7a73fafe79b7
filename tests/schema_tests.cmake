# Value schemas (label `schema`): the rule writers and agents share (core/value_schema.hpp),
# and Valijson against the JSON-Schema-Test-Suite's draft 7 tests (Debian
# json-schema-test-suite).
if(TARGET yuxi_config_core)
  yuxi_config_add_gtest(value_schema_test SOURCE unit/value_schema_test.cpp LABEL schema
    LIBS yuxi_config_core STANDALONE)
  yuxi_config_add_gtest(schema_suite_test SOURCE unit/schema_suite_test.cpp LABEL schema
    LIBS yuxi_config_core STANDALONE)
endif()
