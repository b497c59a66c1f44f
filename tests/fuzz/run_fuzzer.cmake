# run_fuzzer.cmake - ctest helper: copy the seed corpus to a scratch directory (libFuzzer adds
# the inputs it finds to its corpus directory, which must not be the one in the repository)
# and run the fuzzer over it for a bounded time.
# Usage: cmake -DFUZZER=... -DCORPUS=... -DWORK=... [-DSECONDS=20] -P run_fuzzer.cmake
if(NOT SECONDS)
  set(SECONDS 20)
endif()
file(REMOVE_RECURSE ${WORK})
file(COPY ${CORPUS}/ DESTINATION ${WORK})
execute_process(COMMAND ${FUZZER} -max_total_time=${SECONDS} -runs=5000000 -timeout=10 -max_len=8192
                        ${WORK}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fuzzer failed: ${rc}")
endif()
