/*
 * deadlines.c - a sorted list of deadlines (see deadlines.h).
 */
#include "loop/deadlines.h"

#include <stddef.h>

void deadline_list_insert(struct deadline_list *l, struct deadline_node *n, uint64_t at)
{
    struct deadline_node *after = l->tail;
    while (after && after->at > at)
        after = after->prev;
    n->at = at;
    n->prev = after;
    n->next = after ? after->next : l->head;
    if (n->next)
        n->next->prev = n;
    else
        l->tail = n;
    if (after)
        after->next = n;
    else
        l->head = n;
}

void deadline_list_remove(struct deadline_list *l, struct deadline_node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
}
