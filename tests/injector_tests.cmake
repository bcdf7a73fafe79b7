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
  YUXI_ADMISSION_SEEDS="${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/admission")
yuxi_config_warnings(injector_unit_test)
gtest_discover_tests(injector_unit_test PROPERTIES LABELS injector DISCOVERY_TIMEOUT 60)

find_package(OpenSSL 3 REQUIRED)
add_executable(injector_https_test integration/injector_https_test.cpp)
target_include_directories(injector_https_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration)
target_link_libraries(injector_https_test PRIVATE nlohmann_json::nlohmann_json OpenSSL::SSL
  GTest::gtest_main)
target_compile_definitions(injector_https_test PRIVATE
  YUXI_INJECTOR_BIN="$<TARGET_FILE:yuxi-config-injector>")
add_dependencies(injector_https_test yuxi-config-injector)
yuxi_config_warnings(injector_https_test)
gtest_discover_tests(injector_https_test PROPERTIES LABELS injector TIMEOUT 120
  DISCOVERY_TIMEOUT 60)

# One source for the sidecar's shape: the template the injector embeds is what the
# component renders, and the injector's patched pods validate and match the component's.
add_test(NAME injector_template COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/injector/sidecar_template.py --check)
add_test(NAME injector_component
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/injector/check_patches.py $<TARGET_FILE:yuxi-config-injector>)
set_tests_properties(injector_template injector_component PROPERTIES
  LABELS injector SKIP_RETURN_CODE 77 TIMEOUT 300)

# Clusters without cert-manager: the script's pair, served by the injector, renewed in place.
add_test(NAME injector_self_signed_cert
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/injector/self_signed_cert_test.sh $<TARGET_FILE:yuxi-config-injector>)
set_tests_properties(injector_self_signed_cert PROPERTIES
  LABELS injector SKIP_RETURN_CODE 77 TIMEOUT 300)
