/*
 * iotp_config_defaults.h - compile-time limits and constants of the iotp library.
 *
 * Every value is an #ifndef default, so a build overrides it with -D on the command line or by
 * defining IOTP_CONFIG_HEADER to the name of a header that sets the values it wants (an MCU
 * project with 8 KiB of RAM lowers IOTP_MAX_FRAME; iotd keeps the defaults). The values that
 * shape the wire (frame size, argument count) must agree between iotd and the devices it
 * accepts: a device may use smaller limits, never larger ones.
 */
#ifndef IOTP_CONFIG_DEFAULTS_H
#define IOTP_CONFIG_DEFAULTS_H

#ifdef IOTP_CONFIG_HEADER
#include IOTP_CONFIG_HEADER
#endif

/* An Arduino sketch cannot pass -D to its libraries: under the Arduino build (ARDUINO defined)
 * the defaults are a microcontroller's, 512-byte frames and 16 args. */
#if defined(ARDUINO) && !defined(IOTP_MAX_FRAME)
#define IOTP_MAX_FRAME 512
#endif
#if defined(ARDUINO) && !defined(IOTP_MAX_ARGS)
#define IOTP_MAX_ARGS 16
#endif

/* Largest frame in bytes, separators and the final EOT included. */
#ifndef IOTP_MAX_FRAME
#define IOTP_MAX_FRAME 4096
#endif

/* Largest number of ARG fields after the ID. */
#ifndef IOTP_MAX_ARGS
#define IOTP_MAX_ARGS 32
#endif

/* Longest FROM or TO field (a device id, user@tenant or "iotd"), in bytes. */
#ifndef IOTP_MAX_ADDRESS_LEN
#define IOTP_MAX_ADDRESS_LEN 128
#endif

/* Longest TYPE field, in bytes. */
#ifndef IOTP_MAX_TYPE_LEN
#define IOTP_MAX_TYPE_LEN 64
#endif

/* The server's principal address: TO of device frames, FROM of server frames. */
#ifndef IOTP_SERVER_ADDRESS
#define IOTP_SERVER_ADDRESS "iotd"
#endif

/* Wire protocol version announced in HELLO (proto=) and LOGIN. */
#ifndef IOTP_PROTO_VERSION
#define IOTP_PROTO_VERSION 1
#endif

/* ATECC508A MAC command mode used by alg=atecc508a-mac: 0x40 = challenge from the command,
 * key from the slot, serial number SN[2:3] and SN[4:7] included. */
#ifndef IOTP_ATECC_MAC_MODE
#define IOTP_ATECC_MAC_MODE 0x40
#endif

/* 1: a device may authenticate with an ATECC508A (alg=atecc508a-mac); 0: an HMAC-only device
 * leaves that path out of its side of the handshake (the chip's MAC, alg= in HELLO, slot= in
 * AUTH), and iotp_device_hs_start and iotp_device_init refuse the alg with IOTP_EINVAL. The
 * server's handshake and the ATECC508A driver are not affected. */
#ifndef IOTP_DEVICE_ATECC
#define IOTP_DEVICE_ATECC 1
#endif

/* Longest fw= and type= values the device handshake keeps. */
#ifndef IOTP_MAX_HELLO_VALUE_LEN
#define IOTP_MAX_HELLO_VALUE_LEN 64
#endif

/* 1: the parser and writer look for control bytes a machine word at a time (iotp_scan.h),
 * the fast path for 64-bit hosts; 0: a byte at a time, 250 bytes less code on a Cortex-M0,
 * which has no unaligned word loads to gain from. Same results either way. */
#ifndef IOTP_SCAN_WORDS
#define IOTP_SCAN_WORDS 1
#endif

#if IOTP_MAX_FRAME < 64 || IOTP_MAX_ARGS < 8 || IOTP_MAX_ADDRESS_LEN < 8 || IOTP_MAX_TYPE_LEN < 16
#error "iotp limits too small for the handshake frames"
#endif

#endif
