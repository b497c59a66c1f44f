/*
 * deadlines.h - a loop's deadlines as one sorted list, for things that have one rarely or in
 * great numbers (a conn's TLS handshake and close linger, a relayed request's timeout), where
 * a uv_timer each would cost a handle's memory and a heap operation per start and stop. The
 * list's owner keeps one timer for the head.
 *
 * Deadlines of one kind share a duration, so a new one is nearly always the latest: insertion
 * walks from the tail and stops at once. Intrusive: the node lives in the owner's struct
 * (container_of gets the owner back), so the list allocates nothing. Not thread-safe: one
 * list per loop.
 */
#ifndef IOTD_LOOP_DEADLINES_H
#define IOTD_LOOP_DEADLINES_H

#include <stdbool.h>
#include <stdint.h>

struct deadline_node {
    struct deadline_node *prev, *next;
    uint64_t at; /* loop time, ms */
};

/* Zeroed: empty. */
struct deadline_list {
    struct deadline_node *head, *tail;
};

/* Link n (not in any list) due at `at`, after the nodes due at or before it. */
void deadline_list_insert(struct deadline_list *l, struct deadline_node *n, uint64_t at);
/* Unlink n, which is in l; its links are cleared. */
void deadline_list_remove(struct deadline_list *l, struct deadline_node *n);

/* Is n (whose links are cleared when it is not linked anywhere) in l? */
static inline bool deadline_list_contains(const struct deadline_list *l,
                                          const struct deadline_node *n)
{
    return n->prev || l->head == n;
}

#endif
