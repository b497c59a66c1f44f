/*
 * inbox.h - the only way between threads: a bounded multi-producer queue plus a uv_async_t.
 *
 * Any thread may push; only the owning loop's thread pops, from the async callback, and runs
 * each message's handler there. A message is an intrusive struct embedded in the sender's
 * allocation (container_of), so a push never allocates. Wake-ups coalesce: many pushes before
 * the loop runs cost one uv_async_send.
 */
#ifndef IOTD_INBOX_H
#define IOTD_INBOX_H

#include "loop/fifo.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct inbox_msg inbox_msg_t;
/* Runs on the inbox's loop thread; owns msg from then on (frees it, or passes it on). */
typedef void (*inbox_handler_fn)(inbox_msg_t *msg, void *loop_data);

struct inbox_msg {
    struct fifo_link link; /* the inbox's */
    inbox_handler_fn handle;
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct inbox {
    uv_async_t async;
    pthread_mutex_t lock;
    pthread_cond_t space; /* signalled when a full inbox drains, for inbox_push_wait */
    fifo_t queue;         /* messages and their counters, under lock */
    void *loop_data;      /* passed to every handler */
    int closing;
} inbox_t;

/* Initialize on loop (call on the loop's thread, before other threads push). */
int inbox_init(inbox_t *inbox, uv_loop_t *loop, size_t capacity, void *loop_data);

/* Push from any thread. IOT_EBUSY when the inbox holds capacity messages (msg not taken),
 * IOT_EINVAL once closing. */
int inbox_push(inbox_t *inbox, inbox_msg_t *msg);

/* Like inbox_push, but waits for space instead of failing: for threads allowed to block
 * (db threads delivering completions). Never call from a loop thread. */
int inbox_push_wait(inbox_t *inbox, inbox_msg_t *msg);

/* Counters snapshot (thread-safe). */
void inbox_stats(inbox_t *inbox, size_t *depth, size_t *high_water, size_t *capacity,
                 uint64_t *enqueued, uint64_t *dequeued, uint64_t *rejected);

/* Stop accepting, run what is queued, then close the async handle; on_closed runs from the
 * loop once the handle is closed (the inbox memory may be freed then, not before). */
void inbox_close(inbox_t *inbox, void (*on_closed)(inbox_t *inbox));

#endif
