/*
 * iot_grow.c - room for one more element in a growable array (see iot_grow.h).
 */
#include "iot_grow.h"

#include <stdlib.h>

void *iot_grow(void *items, size_t n, size_t *cap, size_t first_cap, size_t elem)
{
    if (n < *cap)
        return items;
    size_t grown_cap = *cap ? *cap * 2 : first_cap;
    void *grown = realloc(items, grown_cap * elem);
    if (grown)
        *cap = grown_cap;
    return grown;
}
