# yuxi-config-agent (label `agent`): its pure logic (flags, TOML → JSON, every decoder of
# outside input against the committed hostile-input table) as unit tests, and file mode
# end to end: the real agent binary on temporary copies of samples/, read through the
# client.
if(TARGET yuxi-config-agent)
  foreach(name toml_json_test options_test change_message_test backoff_test)
    yuxi_config_add_gtest(${name} SOURCE unit/${name}.cpp LABEL agent LIBS yuxi_agent)
  endforeach()
  # Signed envelopes against OpenSSL's one-shot HMAC() as a reference.
  yuxi_config_add_gtest(signing_unit_test SOURCE unit/signing_unit_test.cpp LABEL agent
    LIBS yuxi_config_core OpenSSL::Crypto)
  # The fuzz targets' harness (tests/fuzz/harness), replaying tests/fuzz/corpus/.
  add_subdirectory(${CMAKE_CURRENT_SOURCE_DIR}/fuzz/harness ${CMAKE_CURRENT_BINARY_DIR}/harness)
  yuxi_config_add_gtest(hostile_input_test SOURCE unit/hostile_input_test.cpp LABEL agent
    LIBS yuxi_decoder_harness)
  yuxi_config_add_gtest(file_mode_test SOURCE integration/file_mode_test.cpp LABEL agent
    TIMEOUT 60 LIBS yuxi::config nlohmann_json::nlohmann_json)
endif()
