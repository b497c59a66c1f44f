/*
 * m0_runner.c - start-up, semihosting output and the test runner behind shim/cmocka.h, for the
 * library's unit tests on qemu's micro:bit (nRF51822: a Cortex-M0, 256 KB flash at 0, 16 KB RAM
 * at 0x20000000; m0.ld). Reset copies .data, clears .bss and runs main; the exit status goes to
 * qemu through semihosting's SYS_EXIT, so a failed test fails the ctest that ran qemu.
 */
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include "cmocka.h"

int main(void);

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;

    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static void put(const char *s)
{
    semihost(0x04, s); /* SYS_WRITE0 */
}

static void put_u(uintmax_t v)
{
    char buf[24];
    int i = (int)sizeof(buf) - 1;

    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + (unsigned)(v % 10));
        v /= 10;
    } while (v > 0 && i > 0);
    put(buf + i);
}

static void m0_exit(int ok)
{
    /* ADP_Stopped_ApplicationExit is exit status 0; any other reason is 1. */
    semihost(0x18, (const void *)(uintptr_t)(ok ? 0x20026 : 0x20024));
    for (;;)
        ;
}

void Reset_Handler(void);
void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;

    while (dst < &_edata)
        *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss; dst++)
        *dst = 0;
    m0_exit(main() == 0);
}

static void Fault_Handler(void)
{
    put("hard fault\n");
    m0_exit(0);
}

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    &_estack,
    (const void *)Reset_Handler,
    (const void *)Fault_Handler,
    (const void *)Fault_Handler,
};

static jmp_buf test_env;

void m0_fail(const char *file, int line, const char *what)
{
    put("  check failed at ");
    put(file);
    put(":");
    put_u((uintmax_t)line);
    put(": ");
    put(what);
    put("\n");
    longjmp(test_env, 1);
}

void m0_check_int(int equal, uintmax_t a, uintmax_t b, const char *file, int line)
{
    if ((a == b) == equal)
        return;
    put("  ");
    put_u(a);
    put(equal ? " != " : " == ");
    put_u(b);
    put("\n");
    m0_fail(file, line, "integers");
}

void m0_check_str(int equal, const char *a, const char *b, const char *file, int line)
{
    if (a && b && (strcmp(a, b) == 0) == equal)
        return;
    put("  \"");
    put(a ? a : "(null)");
    put(equal ? "\" != \"" : "\" == \"");
    put(b ? b : "(null)");
    put("\"\n");
    m0_fail(file, line, "strings");
}

/* Run one test: 1 if it passed. Apart so that nothing of the caller lives across longjmp. */
static int run_one(const struct CMUnitTest *test)
{
    if (setjmp(test_env) != 0)
        return 0;
    test->fn(NULL);
    return 1;
}

int m0_run_tests(const struct CMUnitTest *tests, size_t count)
{
    unsigned failed = 0;

    for (size_t i = 0; i < count; i++) {
        int ok = run_one(&tests[i]);
        failed += !ok;
        put(ok ? "[       OK ] " : "[  FAILED  ] ");
        put(tests[i].name);
        put("\n");
    }
    put_u(count - failed);
    put(" of ");
    put_u(count);
    put(" tests passed on the Cortex-M0\n");
    return failed ? 1 : 0;
}
