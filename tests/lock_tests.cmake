# DistributedLock (label `lock`): against private redis-server processes the tests start
# themselves on free 127.0.0.1 ports; lock_holder is the child process of the
# multi-process and SIGKILL cases.
if(NOT TARGET yuxi_config_lock)
  # The top-level CMakeLists normally includes it; this keeps the tests buildable alone.
  include(${PROJECT_SOURCE_DIR}/cmake/lock.cmake)
endif()
if(TARGET yuxi_config_lock)
  add_executable(lock_holder integration/lock_holder.cpp)
  target_link_libraries(lock_holder PRIVATE yuxi::config_lock)
  yuxi_config_warnings(lock_holder)

  add_executable(lock_test integration/lock_test.cpp)
  target_link_libraries(lock_test PRIVATE yuxi::config_lock GTest::gtest_main)
  target_compile_definitions(lock_test PRIVATE YUXI_LOCK_HOLDER_BIN="$<TARGET_FILE:lock_holder>")
  add_dependencies(lock_test lock_holder)
  yuxi_config_warnings(lock_test)
  gtest_discover_tests(lock_test PROPERTIES LABELS lock TIMEOUT 60 DISCOVERY_TIMEOUT 60)
endif()
