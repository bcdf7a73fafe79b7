# yuxi::config_lock: DistributedLock (include/yuxi/config/lock.hpp), header-only over
# hiredis. Separate from yuxi::config so that readers of the segment never need hiredis.
# hiredis ships a pkg-config file but (0.14) no CMake package. Required when the tests are
# built, so that the lock tests never vanish quietly; optional for a parent project.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  if(YUXI_CONFIG_BUILD_TESTS)
    pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
  else()
    pkg_check_modules(HIREDIS QUIET IMPORTED_TARGET hiredis)
  endif()
elseif(YUXI_CONFIG_BUILD_TESTS)
  message(FATAL_ERROR "pkg-config is needed to find hiredis (yuxi::config_lock)")
endif()

if(TARGET PkgConfig::HIREDIS)
  add_library(yuxi_config_lock INTERFACE)
  add_library(yuxi::config_lock ALIAS yuxi_config_lock)
  target_link_libraries(yuxi_config_lock INTERFACE yuxi::config PkgConfig::HIREDIS)
  set_target_properties(yuxi_config_lock PROPERTIES EXPORT_NAME config_lock)
else()
  message(STATUS "hiredis not found: yuxi::config_lock (DistributedLock) is not available")
endif()
