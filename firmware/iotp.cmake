# iotp.cmake - the sources and include directories of the portable wire-protocol library.
#
# Any build consumes it unchanged: include() this file and add ${IOTP_SOURCES} to a target
# with ${IOTP_INCLUDE_DIRS} on its include path (iotd's build, an MCU project's toolchain
# build). It sets variables only: no targets, no flags, no options. The sources are C99 with
# no dependencies beyond <stddef.h>, <stdint.h> and <string.h>.
set(IOTP_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/src/iotp_error.c
  ${CMAKE_CURRENT_LIST_DIR}/src/iotp_frame_parser.c
  ${CMAKE_CURRENT_LIST_DIR}/src/iotp_frame_writer.c
  ${CMAKE_CURRENT_LIST_DIR}/src/iotp_types.c
  ${CMAKE_CURRENT_LIST_DIR}/src/iotp_hex.c
  ${CMAKE_CURRENT_LIST_DIR}/src/iotp_sha256.c
  ${CMAKE_CURRENT_LIST_DIR}/src/iotp_atecc.c
  ${CMAKE_CURRENT_LIST_DIR}/src/iotp_atecc_i2c.c
  ${CMAKE_CURRENT_LIST_DIR}/src/iotp_handshake.c
  ${CMAKE_CURRENT_LIST_DIR}/src/iotp_device_hs.c
  ${CMAKE_CURRENT_LIST_DIR}/src/iotp_server_hs.c
  ${CMAKE_CURRENT_LIST_DIR}/src/iotp_transport.c
  ${CMAKE_CURRENT_LIST_DIR}/src/iotp_outbox.c
  ${CMAKE_CURRENT_LIST_DIR}/src/iotp_backoff.c
  ${CMAKE_CURRENT_LIST_DIR}/src/iotp_device.c
  ${CMAKE_CURRENT_LIST_DIR}/src/iotp_esp_at.c
)

set(IOTP_INCLUDE_DIRS ${CMAKE_CURRENT_LIST_DIR}/include)
