# The admission webhook (label `injector`): unit tests of the decoder, the annotations, the
# patch, the flags and the metrics (with the fuzz seeds replayed); the real binary over
# HTTPS on loopback with a CA the test makes with `openssl` (curl --cacert): reviews,
# certificate rotation without restart, oversized, slow and hostile requests; and scripts
# that apply each answer's patch (python3-jsonpatch) to realistic pods, validate the
# result against the Kubernetes schemas as tests/deploy does, and compare it with what the
# kustomize component renders. A script whose tools are missing exits 77 (skipped).
if(NOT TARGET yuxi-config-injector)
  return()
endif()

add_executable(injector_unit_test
  unit/injector_patch_test.cpp
  unit/injector_admission_test.cpp
  unit/injector_options_test.cpp)
target_link_libraries(injector_unit_test PRIVATE yuxi_injector GTest::gtest_main)
target_compile_definitions(injector_unit_test PRIVATE
  YUXI_ADMISSION_SEEDS="${CMAKE_CURRENT_SOURCE_DIR}/fuzz/admission-seeds")
yuxi_config_warnings(injector_unit_test)
gtest_discover_tests(injector_unit_test PROPERTIES LABELS injector DISCOVERY_TIMEOUT 60)
