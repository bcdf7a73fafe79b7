# The Python client's tests (pytest, Debian's python3-pytest) against a real agent.
if(TARGET yuxi_config_native AND TARGET yuxi-config-agent)
  add_test(NAME python_client
    COMMAND /usr/bin/python3 -m pytest -q -p no:cacheprovider ${CMAKE_CURRENT_SOURCE_DIR}/python)
  set_tests_properties(python_client PROPERTIES LABELS python TIMEOUT 600
    ENVIRONMENT "PYTHONPATH=${CMAKE_BINARY_DIR}/python;YUXI_AGENT_BIN=$<TARGET_FILE:yuxi-config-agent>;YUXI_CONFIGCTL_BIN=$<TARGET_FILE:yuxi-configctl>")
endif()
