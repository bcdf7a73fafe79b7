# yuxi-config-agent (label `agent`): its pure logic (flags, TOML → JSON) as unit tests, and
# file mode end to end: the real agent binary on temporary copies of samples/, read
# through the client.
if(TARGET yuxi-config-agent)
  foreach(name toml_json_test options_test)
    add_executable(${name} unit/${name}.cpp)
    target_link_libraries(${name} PRIVATE yuxi_agent GTest::gtest_main)
    target_compile_definitions(${name} PRIVATE YUXI_SAMPLES_DIR="${PROJECT_SOURCE_DIR}/samples")
    yuxi_config_warnings(${name})
    gtest_discover_tests(${name} PROPERTIES LABELS agent DISCOVERY_TIMEOUT 60)
  endforeach()

  add_executable(file_mode_test integration/file_mode_test.cpp)
  target_link_libraries(file_mode_test PRIVATE yuxi::config nlohmann_json::nlohmann_json
    GTest::gtest_main)
  target_compile_definitions(file_mode_test PRIVATE
    YUXI_AGENT_BIN="$<TARGET_FILE:yuxi-config-agent>"
    YUXI_SAMPLES_DIR="${PROJECT_SOURCE_DIR}/samples")
  add_dependencies(file_mode_test yuxi-config-agent)
  yuxi_config_warnings(file_mode_test)
  gtest_discover_tests(file_mode_test PROPERTIES LABELS agent TIMEOUT 60 DISCOVERY_TIMEOUT 60)
endif()
