# yuxi_injector_template_source(VAR): the path of a generated C++ file that defines
# yuxi::config::injector::sidecar_template_text() as the bytes of sidecar_template.json,
# regenerated whenever the JSON changes. Shared by the injector and the fuzz target.
set(_yuxi_injector_dir ${CMAKE_CURRENT_LIST_DIR})

function(yuxi_injector_template_source var)
  set(json ${_yuxi_injector_dir}/sidecar_template.json)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/sidecar_template_data.cpp)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DIN=${json} -DOUT=${out} -P ${_yuxi_injector_dir}/embed_file.cmake
    DEPENDS ${json} ${_yuxi_injector_dir}/embed_file.cmake
    COMMENT "Embedding injector/sidecar_template.json"
    VERBATIM)
  set(${var} ${out} PARENT_SCOPE)
endfunction()
