/*
 * iot_grow.c - room in a growable array (see iot_grow.h).
 */
#include "iot_grow.h"

#include <stdint.h>
#include <stdlib.h>

void *iot_reserve(void *items, size_t need, size_t *cap, size_t first_cap, size_t elem)
{
    if (need <= *cap)
        return items;
    size_t grown_cap = *cap ? *cap : (first_cap ? first_cap : 1);
    if (*cap)
        grown_cap *= 2;
    while (grown_cap < need) {
        if (grown_cap > SIZE_MAX / 2)
            return NULL;
        grown_cap *= 2;
    }
    if (elem && grown_cap > SIZE_MAX / elem)
        return NULL;
    void *grown = realloc(items, grown_cap * elem);
    if (grown)
        *cap = grown_cap;
    return grown;
}

void *iot_grow(void *items, size_t n, size_t *cap, size_t first_cap, size_t elem)
{
    return iot_reserve(items, n + 1, cap, first_cap, elem);
}
