# DistributedLock (label `lock`): against private redis-server processes the tests start
# themselves on free 127.0.0.1 ports; lock_holder is the child process of the
# multi-process and SIGKILL cases.
if(TARGET yuxi_config_lock)
  add_executable(lock_holder integration/lock_holder.cpp)
  target_link_libraries(lock_holder PRIVATE yuxi::config_lock)
  yuxi_config_warnings(lock_holder)
  yuxi_config_add_gtest(lock_test SOURCE integration/lock_test.cpp LABEL lock TIMEOUT 60
    LIBS yuxi::config_lock DEFINITIONS YUXI_LOCK_HOLDER_BIN="$<TARGET_FILE:lock_holder>")
  add_dependencies(lock_test lock_holder)
endif()
