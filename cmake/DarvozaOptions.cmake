# Compiler flags for Darvoza's own targets. Third-party headers are included as SYSTEM so
# -Werror applies to our code only.

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE RelWithDebInfo CACHE STRING "Build type" FORCE)
endif()

set(DARVOZA_WARNINGS -Wall -Wextra -Werror -Wno-missing-field-initializers)

if(DARVOZA_SANITIZE)
  # Every undefined-behaviour report stops the process, except the vptr check's, which obeys
  # UBSAN_OPTIONS=halt_on_error (1 for every test, tests/CMakeLists.txt): GCC's runtime probes
  # the object's memory through a pipe, so in a daemon that has run out of descriptors on
  # purpose (tests/security/connection_limits_test.sh) it reports valid objects as having an
  # invalid vptr; that test alone lets such reports pass.
  set(DARVOZA_SANITIZER_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined -fsanitize-recover=vptr)
  add_compile_options(${DARVOZA_SANITIZER_FLAGS})
  add_link_options(${DARVOZA_SANITIZER_FLAGS})
endif()

if(DARVOZA_FUZZ)
  # Coverage instrumentation on everything (the parsers live in our libraries, not in the fuzz
  # target's own file); only the fuzz executables link libFuzzer's main.
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "DARVOZA_FUZZ=ON needs clang (CC=clang-14 CXX=clang++-14)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# darvoza_target_defaults(TARGET): warnings and include root for a target of ours.
function(darvoza_target_defaults target)
  target_compile_options(${target} PRIVATE ${DARVOZA_WARNINGS})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
endfunction()
