/*
 * fifo.h - the one queue of iotd: a bounded intrusive FIFO with the counters every queue
 * reports (depth, high-water mark, in, out, refused).
 *
 * A fifo never allocates: what it queues embeds a struct fifo_link (container_of gets the
 * entry back), so a push cannot fail for want of memory, only for want of room. It does no
 * locking and no waking: its owner adds them (an inbox: a mutex and a uv_async_t; the db pool:
 * a mutex and a condition variable), and fifo_push says when the consumer may need waking.
 */
#ifndef IOTD_LOOP_FIFO_H
#define IOTD_LOOP_FIFO_H

#include <stddef.h>
#include <stdint.h>

struct fifo_link {
    struct fifo_link *next;
};

typedef struct fifo {
    struct fifo_link *head, *tail;
    size_t depth, capacity;
    size_t high_water; /* the largest depth ever reached */
    uint64_t enqueued, dequeued, rejected;
} fifo_t;

static inline void fifo_init(fifo_t *q, size_t capacity)
{
    *q = (fifo_t){.capacity = capacity};
}

static inline int fifo_full(const fifo_t *q)
{
    return q->depth >= q->capacity;
}

/* Append link. 1 if the fifo was empty (its consumer may be asleep), 0 if not, -1 when the
 * fifo holds capacity links already (link not taken, counted as rejected). */
static inline int fifo_push(fifo_t *q, struct fifo_link *link)
{
    if (fifo_full(q)) {
        q->rejected++;
        return -1;
    }
    int was_empty = q->head == NULL;
    link->next = NULL;
    if (q->tail)
        q->tail->next = link;
    else
        q->head = link;
    q->tail = link;
    q->enqueued++;
    if (++q->depth > q->high_water)
        q->high_water = q->depth;
    return was_empty;
}

/* The oldest link, taken out (its next cleared), or NULL when empty. */
static inline struct fifo_link *fifo_pop(fifo_t *q)
{
    struct fifo_link *link = q->head;
    if (!link)
        return NULL;
    if (!(q->head = link->next))
        q->tail = NULL;
    link->next = NULL;
    q->depth--;
    q->dequeued++;
    return link;
}

/* Every link at once, oldest first and chained through next (NULL-terminated), leaving the
 * fifo empty: a consumer takes the lot under its lock and runs it without. */
static inline struct fifo_link *fifo_take_all(fifo_t *q)
{
    struct fifo_link *all = q->head;
    q->dequeued += q->depth;
    q->head = q->tail = NULL;
    q->depth = 0;
    return all;
}

#endif
