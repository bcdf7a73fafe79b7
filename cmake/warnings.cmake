# Warnings for the project's own targets (not for consumers of the INTERFACE target).
function(yuxi_config_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
    -Wno-sign-conversion -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual)
  if(YUXI_CONFIG_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
