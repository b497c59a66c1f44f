# check_freestanding.cmake - compile every iotp source for a Cortex-M0+ (thumbv6m, freestanding,
# C99, -pedantic) and check that the objects need nothing from outside but the library itself,
# the string functions and the compiler's own helpers: no malloc, no stdio, no I/O.
#
# cmake -DCLANG=clang -DNM=llvm-nm -DSOURCES="a.c;b.c" -DINCLUDE=dir -DSTUBS=dir -DOUT=dir -P ...
set(allowed memcpy memmove memset memchr memcmp strlen strcmp strncmp)
file(MAKE_DIRECTORY ${OUT})
foreach(src ${SOURCES})
  get_filename_component(name ${src} NAME_WE)
  set(obj ${OUT}/${name}.o)
  execute_process(
    COMMAND ${CLANG} --target=thumbv6m-none-eabi -mcpu=cortex-m0plus -ffreestanding -std=c99
            -pedantic -Wall -Wextra -Werror -Os -I${STUBS} -I${INCLUDE} -c ${src} -o ${obj}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${src} does not build for a Cortex-M0+:\n${out}")
  endif()
  if(NM)
    execute_process(COMMAND ${NM} -u ${obj} OUTPUT_VARIABLE undefined RESULT_VARIABLE rc)
    string(REGEX MATCHALL "U [A-Za-z0-9_]+" symbols "${undefined}")
    foreach(entry ${symbols})
      string(SUBSTRING "${entry}" 2 -1 sym)
      list(FIND allowed ${sym} known)
      if(known EQUAL -1 AND NOT sym MATCHES "^(iotp_|__aeabi_)")
        message(FATAL_ERROR "${src} needs ${sym}: the library may use only the string functions")
      endif()
    endforeach()
  endif()
endforeach()
