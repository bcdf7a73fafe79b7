# Warnings for the project's own targets (not for consumers of the INTERFACE target), and
# -Werror when YUXI_CONFIG_WERROR (presets and CI) is on.
function(yuxi_config_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
    -Wno-sign-conversion -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual)
  # GCC 12 at -O3 (a packager's Release build) reports -Wrestrict inside libstdc++ for any
  # `"literal" + std::string&&` (GCC bug 105651, fixed in 13): a false positive in the
  # standard library's code, not ours. Every other compiler and level keeps the warning.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE $<$<CONFIG:Release>:-Wno-restrict>)
  endif()
  if(YUXI_CONFIG_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
