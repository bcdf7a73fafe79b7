# The segment's safety tests: layout facts, hostile segments, readers under a writer at
# full speed, and killed writers. Label `segment`: CI also runs them under ASan+UBSan and
# TSan, where they scale their iteration counts down themselves.
set(_yuxi_segment_tests
  unit/layout_test
  unit/hostile_test
  fault/torture_test
  fault/writer_kill_test
)
set(_yuxi_segment_test_names)
foreach(source ${_yuxi_segment_tests})
  get_filename_component(name ${source} NAME)
  list(APPEND _yuxi_segment_test_names ${name})
  add_executable(${name} ${source}.cpp)
  target_link_libraries(${name} PRIVATE yuxi_segment_writer GTest::gtest_main)
  yuxi_config_warnings(${name})
  gtest_discover_tests(${name} PROPERTIES LABELS segment DISCOVERY_TIMEOUT 60)
endforeach()

# What the sanitizer builds of scripts/test build: the segment's tests and nothing else.
add_custom_target(segment_tests DEPENDS segment_test ${_yuxi_segment_test_names})
