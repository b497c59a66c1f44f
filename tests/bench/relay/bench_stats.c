/*
 * bench_stats.c - latency arrays and the result line (contract in bench_stats.h).
 *
 * Percentiles are taken by nearest rank over the sorted samples: exact for what was measured,
 * no histogram buckets to blur the tail.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int bench_latencies_init(struct bench_latencies *l, size_t cap)
{
    memset(l, 0, sizeof(*l));
    l->ns = malloc(cap * sizeof(*l->ns));
    if (!l->ns)
        return -1;
    l->cap = cap;
    return 0;
}

void bench_latencies_free(struct bench_latencies *l)
{
    free(l->ns);
    memset(l, 0, sizeof(*l));
}

size_t bench_samples_for(double seconds)
{
    double want = (seconds + 1) * 2e6;

    return want > 64.0 * 1024 * 1024 ? 64u * 1024 * 1024 : (size_t)want;
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

/* The sample at quantile q (0..1) of sorted[n], nearest rank, in microseconds. */
static double quantile_us(const uint32_t *sorted, size_t n, double q)
{
    size_t rank;

    if (n == 0)
        return 0;
    rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1] / 1000.0;
}

/* The load generator's own CPU time so far (user and system), in microseconds: what driving
 * one system costs compared with another. */
static double own_cpu_us(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

int bench_report(const char *system, unsigned inflight, const struct bench_latencies *lat, size_t n,
                 double seconds, uint64_t errors, uint64_t lost)
{
    uint64_t total = 0, timed = 0, warmup = 0;
    uint32_t *all;
    size_t at = 0;

    for (size_t i = 0; i < n; i++) {
        timed += lat[i].count;
        total += lat[i].count + lat[i].extra;
        warmup += lat[i].warmup;
    }
    all = malloc((timed ? timed : 1) * sizeof(*all));
    if (!all) {
        fprintf(stderr, "bench: out of memory for %llu samples\n", (unsigned long long)timed);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(all + at, lat[i].ns, lat[i].count * sizeof(*all));
        at += lat[i].count;
    }
    qsort(all, timed, sizeof(*all), compare_u32);
    printf("system=%s inflight=%u rt=%llu seconds=%.3f rt_s=%.0f p50_us=%.1f p99_us=%.1f "
           "p999_us=%.1f errors=%llu lost=%llu rt_all=%llu load_cpu_us=%.0f\n",
           system, inflight, (unsigned long long)total, seconds,
           seconds > 0 ? (double)total / seconds : 0, quantile_us(all, timed, 0.50),
           quantile_us(all, timed, 0.99), quantile_us(all, timed, 0.999),
           (unsigned long long)errors, (unsigned long long)lost,
           (unsigned long long)(total + warmup), own_cpu_us());
    fflush(stdout);
    free(all);
    return total > 0 ? 0 : -1;
}
