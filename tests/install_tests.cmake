# The installed package (label `install`): cmake --install into a temporary prefix, then a
# separate project finds it with find_package(YuxiConfig) and reads a segment.
add_executable(install_make_segment install_consumer/make_segment.cpp)
target_link_libraries(install_make_segment PRIVATE yuxi_agent)
yuxi_config_warnings(install_make_segment)

add_test(NAME install_consumer
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/install_consumer/run-install-test
    ${PROJECT_BINARY_DIR} $<TARGET_FILE:install_make_segment> ${CMAKE_CXX_COMPILER})
set_tests_properties(install_consumer PROPERTIES LABELS install TIMEOUT 300)
