/*
 * string.h - the only libc a freestanding MCU build of iotp may use, declared for the
 * Cortex-M0+ compile check (check_freestanding.cmake): the toolchain's own string.h is not
 * needed to prove the library asks for nothing else.
 */
#ifndef IOTP_FREESTANDING_STRING_H
#define IOTP_FREESTANDING_STRING_H

#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memchr(const void *s, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

#endif
