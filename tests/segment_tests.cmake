# The segment's safety tests: layout facts, hostile segments, readers under a writer at
# full speed, and killed writers. Label `segment`: CI also runs them under ASan+UBSan and
# TSan, where they scale their iteration counts down themselves.
set(_yuxi_segment_tests
  unit/segment_test
  unit/layout_test
  unit/hostile_test
  unit/cross_version_test
  unit/typed_read_test
  fault/torture_test
  fault/writer_kill_test
)
set(_yuxi_segment_test_names)
foreach(source ${_yuxi_segment_tests})
  get_filename_component(name ${source} NAME)
  list(APPEND _yuxi_segment_test_names ${name})
  yuxi_config_add_gtest(${name} SOURCE ${source}.cpp LABEL segment LIBS yuxi_segment_writer
    STANDALONE)
endforeach()

# What the sanitizer builds of scripts/test build: the segment's tests and nothing else.
add_custom_target(segment_tests DEPENDS ${_yuxi_segment_test_names})
