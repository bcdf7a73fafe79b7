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

  # Every decoder of outside input against the committed hostile-input table, through the
  # fuzz targets' harness (tests/fuzz/harness).
  add_subdirectory(${CMAKE_CURRENT_SOURCE_DIR}/fuzz/harness ${CMAKE_CURRENT_BINARY_DIR}/harness)
  add_executable(hostile_input_test unit/hostile_input_test.cpp)
  target_link_libraries(hostile_input_test PRIVATE yuxi_decoder_harness GTest::gtest_main)
  target_compile_definitions(hostile_input_test PRIVATE
    YUXI_FUZZ_CORPUS="${PROJECT_SOURCE_DIR}/tests/fuzz/corpus")
  yuxi_config_warnings(hostile_input_test)
  gtest_discover_tests(hostile_input_test PROPERTIES LABELS agent DISCOVERY_TIMEOUT 60)

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
