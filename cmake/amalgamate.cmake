# Writes include/kvc/kvc.hpp, the single header users drop in, from the parts
# in include/kvc/parts/, in the order below:
#   cmake -P cmake/amalgamate.cmake             (re)write kvc.hpp
#   cmake -DCHECK=ON -P cmake/amalgamate.cmake  fail unless kvc.hpp is current
# Fails too when a file in parts/ is not listed here (it would be lost).
cmake_minimum_required(VERSION 3.16)

set(parts
  overview      # the API in one screen, configuration, the parts
  begin_core    # the format core: standard headers, version, ABI namespace
  errors
  layout
  crc32c
  codec
  sha1
  streams
  reader
  writer
  updates
  end_core
  begin_full    # past the core: platform headers
  kernels
  files
  platform
  platform_posix
  platform_windows
  file_ops
  cache
  c_interface
  end_full)

get_filename_component(root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(dir "${root}/include/kvc/parts")
set(out "${root}/include/kvc/kvc.hpp")

file(GLOB present RELATIVE "${dir}" "${dir}/*")
foreach(name IN LISTS present)
  string(REGEX REPLACE "\\.hpp$" "" base "${name}")
  if(NOT base IN_LIST parts OR NOT name MATCHES "\\.hpp$")
    message(FATAL_ERROR "include/kvc/parts/${name} is not listed in cmake/amalgamate.cmake")
  endif()
endforeach()

set(text "")
foreach(part IN LISTS parts)
  if(NOT EXISTS "${dir}/${part}.hpp")
    message(FATAL_ERROR "include/kvc/parts/${part}.hpp is listed but missing")
  endif()
  file(READ "${dir}/${part}.hpp" body)
  if(part STREQUAL "overview")
    string(APPEND text "${body}//\n"
      "// GENERATED from include/kvc/parts/ by cmake/amalgamate.cmake: do not edit\n"
      "// this file, edit the parts and run `cmake -P cmake/amalgamate.cmake`.\n")
  else()
    string(APPEND text "\n// ---- begin parts/${part}.hpp\n${body}// ---- end parts/${part}.hpp\n")
  endif()
endforeach()

if(CHECK)
  file(READ "${out}" current)
  if(NOT current STREQUAL text)
    message(FATAL_ERROR "include/kvc/kvc.hpp differs from its parts: run `cmake -P cmake/amalgamate.cmake`")
  endif()
  message(STATUS "include/kvc/kvc.hpp is current")
else()
  file(WRITE "${out}" "${text}")
endif()
