/*
 * iot_grow.h - room for one more element in a growable array.
 *
 * The arrays of the project (registry rows, held senders, alarm rules, subscriptions) grow
 * the same way: doubling from a first capacity, and left intact when memory is short.
 */
#ifndef IOT_GROW_H
#define IOT_GROW_H

#include <stddef.h>

/* items holds n elements of elem bytes in room for *cap. Returns items itself while n < *cap,
 * else items realloc'ed to twice *cap (first_cap the first time) with *cap updated, or NULL
 * when out of memory (items and *cap untouched). */
void *iot_grow(void *items, size_t n, size_t *cap, size_t first_cap, size_t elem);

#endif
