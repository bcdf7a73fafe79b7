# The deployment files (label `deploy`): deploy/k8s, deploy/monitoring, deploy/docker,
# deploy/systemd. Each check also breaks copies of what it checks and fails unless every
# broken copy is rejected (--self-test). A check whose tool is missing exits 77 and is
# reported as skipped: kubectl (kustomize v5) and node >= 20 with npm for deploy_k8s,
# promtool (Debian package `prometheus`) for deploy_monitoring, systemd-analyze for
# deploy_systemd. The node checks install tests/deploy/node_modules with `npm ci` from the
# committed package-lock.json on first use (needs the npm registry or a warm ~/.npm).
set(_yuxi_deploy ${CMAKE_CURRENT_SOURCE_DIR}/deploy)

if(TARGET yuxi-config-agent)
  # The agent also runs with the rendered file-mode settings and must accept them.
  add_test(NAME deploy_k8s
    COMMAND ${_yuxi_deploy}/validate_k8s.sh $<TARGET_FILE:yuxi-config-agent>)
else()
  add_test(NAME deploy_k8s COMMAND ${_yuxi_deploy}/validate_k8s.sh)
endif()
add_test(NAME deploy_monitoring COMMAND ${_yuxi_deploy}/check_monitoring.sh)
set_tests_properties(deploy_k8s deploy_monitoring PROPERTIES
  LABELS deploy SKIP_RETURN_CODE 77 TIMEOUT 300)

if(TARGET yuxi-config-agent AND TARGET yuxi-configctl)
  # The image's runtime packages against what these binaries load. A sanitizer build
  # loads its runtime too, which the image never has: checked on plain builds only.
  if(NOT CMAKE_CXX_FLAGS MATCHES "-fsanitize" AND TARGET yuxi-config-injector)
    add_test(NAME deploy_dockerfile
      COMMAND ${_yuxi_deploy}/check_dockerfile.sh --self-test
        $<TARGET_FILE:yuxi-config-agent> $<TARGET_FILE:yuxi-configctl>
        $<TARGET_FILE:yuxi-config-injector>)
    set_tests_properties(deploy_dockerfile PROPERTIES
      LABELS deploy SKIP_RETURN_CODE 77 TIMEOUT 120)
  endif()
  add_test(NAME deploy_systemd
    COMMAND ${_yuxi_deploy}/check_systemd.sh --self-test $<TARGET_FILE:yuxi-config-agent>)
  set_tests_properties(deploy_systemd PROPERTIES
    LABELS deploy SKIP_RETURN_CODE 77 TIMEOUT 120)
endif()
