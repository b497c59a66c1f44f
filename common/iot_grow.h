/*
 * iot_grow.h - room in a growable array.
 *
 * The arrays of the project (registry rows, held senders, alarm rules, subscriptions, text
 * buffers) grow the same way: doubling from a first capacity, and left intact when memory is
 * short. iot_grow makes room for one more element, iot_reserve for any number of them.
 */
#ifndef IOT_GROW_H
#define IOT_GROW_H

#include <stddef.h>

/* items holds n elements of elem bytes in room for *cap. Returns items itself while n < *cap,
 * else items realloc'ed to twice *cap (first_cap the first time) with *cap updated, or NULL
 * when out of memory (items and *cap untouched). */
void *iot_grow(void *items, size_t n, size_t *cap, size_t first_cap, size_t elem);

/* items has room for *cap elements of elem bytes. Returns items itself while need <= *cap,
 * else items realloc'ed to the first capacity in first_cap, 2 first_cap, 4 first_cap... (or
 * 2 *cap, 4 *cap... once allocated) that holds need, with *cap updated; NULL when out of
 * memory or the size overflows (items and *cap untouched). */
void *iot_reserve(void *items, size_t need, size_t *cap, size_t first_cap, size_t elem);

#endif
