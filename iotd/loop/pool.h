/*
 * pool.h - fixed-size blocks for the long-lived objects of one io thread (connections,
 * sessions), carved from large chunks that sit outside the malloc heap.
 *
 * Why: at tens of thousands of idle devices, the objects that stay (one conn and one session
 * per device) dominate memory. From malloc each costs a header and, worse, a connect storm
 * interleaves them with the short-lived handshake allocations of the same thread; once the
 * handshakes are freed their pages cannot be given back, since a long-lived object sits on
 * each. A pool holds only blocks of one size, so what a storm leaves behind is dense.
 *
 * A pool belongs to one thread: no locks, and every call must come from that thread (checked
 * in debug builds). Blocks are zeroed on allocation. A chunk whose blocks are all free goes
 * back to the system, except one kept to absorb churn at a chunk boundary; waste is therefore
 * bounded by the partly used chunks (at worst one block holding a whole chunk, if connections
 * with long lives are spread thinly across chunks - the cost of never moving an object).
 */
#ifndef IOTD_POOL_H
#define IOTD_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

/* Bytes per chunk: a power of two, so a block finds its chunk by masking its address. */
#define POOL_CHUNK_SIZE (64 * 1024)

struct pool_chunk;

typedef struct pool {
    size_t block_size;          /* rounded up to 16 */
    unsigned blocks_per_chunk;  /* at least 1: block_size must fit a chunk */
    struct pool_chunk *partial; /* chunks with free and used blocks, allocated from first */
    struct pool_chunk *spare;   /* one entirely free chunk, kept against churn */
    size_t live, chunks;        /* blocks handed out; chunks held (spare included) */
    pthread_t owner;            /* debug builds: the thread that first allocated */
    bool owned;
} pool_t;

/* Set up an empty pool of blocks of block_size bytes (no memory is taken yet). block_size must
 * be at most POOL_MAX_BLOCK. */
void pool_init(pool_t *p, size_t block_size);
#define POOL_MAX_BLOCK (POOL_CHUNK_SIZE / 4)
/* A zeroed block, or NULL when the system is out of memory. */
void *pool_alloc(pool_t *p);
/* Give a block of p back (NULL is ignored). */
void pool_free(pool_t *p, void *block);
/* Release every chunk. The caller must have freed every block first (if not, the chunks with
 * blocks still out stay mapped). */
void pool_destroy(pool_t *p);

#endif
