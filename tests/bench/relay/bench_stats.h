/*
 * bench_stats.h - what every load generator of the relay benchmark measures, and how it says it.
 *
 * Each connection records every round trip's latency into its own preallocated array (no
 * allocation, no lock on the measured path); at the end bench_report merges the arrays, sorts
 * them once and prints one line of key=value pairs that run.sh parses:
 *
 *   system=epoll inflight=16 rt=771234 seconds=5.000 rt_s=154246 p50_us=98.1 p99_us=180.2
 *   p999_us=420.7 errors=0 lost=0 rt_all=790321
 *
 * Latencies are kept in nanoseconds as uint32_t (4.29 s at most, far beyond any answer here):
 * half the memory of 64-bit samples, so a few million fit in a cache-friendly array.
 */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

struct bench_latencies {
    uint32_t *ns;    /* samples in nanoseconds */
    size_t count;    /* samples recorded */
    size_t cap;      /* room in ns */
    uint64_t extra;  /* round trips that did not fit in ns (counted, not timed) */
    uint64_t warmup; /* round trips during the warm-up: not timed, but the server's CPU
                        time covers them, so they count for CPU per round trip (rt_all) */
};

/* Monotonic time in nanoseconds. */
uint64_t bench_now_ns(void);

/* Allocate room for cap samples. Returns 0 or -1 (out of memory). */
int bench_latencies_init(struct bench_latencies *l, size_t cap);

/* Record one round trip that started at start_ns and ended at end_ns. */
static inline void bench_latencies_add(struct bench_latencies *l, uint64_t start_ns,
                                       uint64_t end_ns)
{
    uint64_t d = end_ns - start_ns;

    if (l->count < l->cap)
        l->ns[l->count++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    else
        l->extra++;
}

void bench_latencies_free(struct bench_latencies *l);

/* Merge n arrays, sort, and print the result line to stdout. seconds is the measured window;
 * errors counts answers that were not OK, lost requests still unanswered at the end. Returns
 * 0, or -1 when there was nothing to measure (the line is printed anyway, with zeros). */
int bench_report(const char *system, unsigned inflight, const struct bench_latencies *lat, size_t n,
                 double seconds, uint64_t errors, uint64_t lost);

/* Samples to preallocate for a run of seconds at up to 2 million round trips a second (well
 * above what one loopback connection reaches), bounded to 64 Mi samples (256 MiB). */
size_t bench_samples_for(double seconds);

#endif
