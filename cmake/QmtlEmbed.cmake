# qmtl_embed(<out.cc> <namespace> <name>=<file>...): compiles files into the
# binary as std::string_view constants (cmake/embed.cmake writes the source),
# rebuilt when a file changes. The web assets travel this way: no network and
# no files beside the binary at run time.
function(qmtl_embed out namespace)
  set(files)
  foreach(entry IN LISTS ARGN)
    string(REGEX REPLACE "^[^=]*=" "" path "${entry}")
    list(APPEND files ${path})
  endforeach()
  string(REPLACE ";" "\\;" entries "${ARGN}")
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DNAMESPACE=${namespace} "-DFILES=${entries}"
            -P ${PROJECT_SOURCE_DIR}/cmake/embed.cmake
    DEPENDS ${files} ${PROJECT_SOURCE_DIR}/cmake/embed.cmake
    COMMENT "Embedding web assets in ${out}")
endfunction()

# web/node_modules comes from `npm ci` in scripts/setup.sh.
set(QMTL_WEB ${PROJECT_SOURCE_DIR}/web)
set(QMTL_UPLOT ${QMTL_WEB}/node_modules/uplot)
if(NOT EXISTS ${QMTL_UPLOT}/dist/uPlot.iife.min.js)
  message(FATAL_ERROR "web/node_modules is missing: run scripts/setup.sh (it runs `npm ci` in web/)")
endif()
