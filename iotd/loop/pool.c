/*
 * pool.c - fixed-size blocks from aligned chunks (see pool.h).
 *
 * A chunk is POOL_CHUNK_SIZE bytes mapped straight from the kernel (not from malloc, whose heap
 * it would fragment in turn) at an address aligned to its size, so pool_free finds a block's
 * chunk by masking the address. The chunk starts with its header; its blocks follow. Blocks are
 * handed out first from the chunk's free list, then from its never-used tail ("bump"), so pages
 * of a new chunk are touched only as they are needed.
 *
 * The pool keeps chunks that have both free and used blocks on one list and allocates from its
 * head; a full chunk that gets a block back goes to the head, so holes are refilled before a new
 * chunk is touched. Full chunks are on no list. A chunk that becomes entirely free is unmapped,
 * unless the pool has no spare yet: one empty chunk is kept so that a connection count going up
 * and down across a chunk boundary does not map and unmap each time.
 *
 * Under AddressSanitizer free blocks are poisoned, so a use after pool_free is still caught
 * even though the memory does not come from malloc.
 */
#include "loop/pool.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ASAN 1
#endif
#endif
#ifdef POOL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(addr, size)   ASAN_POISON_MEMORY_REGION(addr, size)
#define UNPOISON(addr, size) ASAN_UNPOISON_MEMORY_REGION(addr, size)
#else
#define POISON(addr, size)   ((void)(addr), (void)(size))
#define UNPOISON(addr, size) ((void)(addr), (void)(size))
#endif

#define POOL_ALIGN  16
#define POOL_HEADER 64 /* the chunk header, rounded to a cache line */

struct pool_chunk {
    struct pool_chunk *prev, *next; /* on the pool's partial list */
    void *free_list;                /* freed blocks; the link is the block's first word */
    unsigned used;                  /* blocks handed out */
    unsigned bumped;                /* blocks ever handed out from the tail */
    bool listed;                    /* on the partial list */
};

_Static_assert(sizeof(struct pool_chunk) <= POOL_HEADER, "chunk header too large");
_Static_assert((POOL_CHUNK_SIZE & (POOL_CHUNK_SIZE - 1)) == 0, "chunk size not a power of two");

static void pool_check_thread(pool_t *p)
{
#ifndef NDEBUG
    if (!p->owned) {
        p->owner = pthread_self();
        p->owned = true;
    }
    assert(pthread_equal(p->owner, pthread_self()));
#else
    (void)p;
#endif
}

void pool_init(pool_t *p, size_t block_size)
{
    assert(block_size > 0 && block_size <= POOL_MAX_BLOCK);
    *p = (pool_t){0};
    p->block_size = (block_size + POOL_ALIGN - 1) / POOL_ALIGN * POOL_ALIGN;
    p->blocks_per_chunk = (unsigned)((POOL_CHUNK_SIZE - POOL_HEADER) / p->block_size);
}

static uint8_t *chunk_blocks(struct pool_chunk *c)
{
    return (uint8_t *)c + POOL_HEADER;
}

static struct pool_chunk *chunk_of(void *block)
{
    return (struct pool_chunk *)((uintptr_t)block & ~(uintptr_t)(POOL_CHUNK_SIZE - 1));
}

/* A new chunk, aligned to its size: map twice the size and unmap what lies outside the
 * aligned part. Fresh anonymous memory is zero, so the header needs no initialisation. */
static struct pool_chunk *chunk_new(pool_t *p)
{
    const size_t size = POOL_CHUNK_SIZE;
    uint8_t *raw = mmap(NULL, 2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + size - 1) & ~(uintptr_t)(size - 1);
    uintptr_t end = (uintptr_t)raw + 2 * size;
    if (start > (uintptr_t)raw)
        munmap(raw, start - (uintptr_t)raw);
    if (end > start + size)
        munmap((void *)(start + size), end - (start + size));
    struct pool_chunk *c = (struct pool_chunk *)start;
    POISON(chunk_blocks(c), size - POOL_HEADER);
    p->chunks++;
    return c;
}

static void chunk_release(pool_t *p, struct pool_chunk *c)
{
    /* The shadow of unmapped memory must be clean: the kernel may hand the range to anyone. */
    UNPOISON(chunk_blocks(c), POOL_CHUNK_SIZE - POOL_HEADER);
    munmap(c, POOL_CHUNK_SIZE);
    p->chunks--;
}

static void partial_link(pool_t *p, struct pool_chunk *c)
{
    c->prev = NULL;
    c->next = p->partial;
    if (c->next)
        c->next->prev = c;
    p->partial = c;
    c->listed = true;
}

static void partial_unlink(pool_t *p, struct pool_chunk *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        p->partial = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->listed = false;
}

void *pool_alloc(pool_t *p)
{
    pool_check_thread(p);
    struct pool_chunk *c = p->partial;
    if (!c) {
        if (p->spare) {
            c = p->spare;
            p->spare = NULL;
        } else if (!(c = chunk_new(p))) {
            return NULL;
        }
        partial_link(p, c);
    }
    uint8_t *block;
    if (c->free_list) {
        block = c->free_list;
        UNPOISON(block, p->block_size);
        memcpy(&c->free_list, block, sizeof(void *));
        memset(block, 0, p->block_size);
    } else {
        block = chunk_blocks(c) + (size_t)c->bumped++ * p->block_size;
        UNPOISON(block, p->block_size); /* never used: still zero from the kernel */
    }
    if (++c->used == p->blocks_per_chunk)
        partial_unlink(p, c);
    p->live++;
    return block;
}

void pool_free(pool_t *p, void *block)
{
    if (!block)
        return;
    pool_check_thread(p);
    struct pool_chunk *c = chunk_of(block);
    assert(c->used > 0);
    if (!c->listed)
        partial_link(p, c); /* was full: refill it before anything newer */
    memcpy(block, &c->free_list, sizeof(void *));
    c->free_list = block;
    POISON(block, p->block_size);
    c->used--;
    p->live--;
    if (c->used == 0) {
        partial_unlink(p, c);
        if (!p->spare)
            p->spare = c;
        else
            chunk_release(p, c);
    }
}

void pool_destroy(pool_t *p)
{
    /* A block still out (a caller's bug) keeps its chunk mapped: a leak rather than a crash
     * of whoever still holds it. */
    while (p->live == 0 && p->partial) {
        struct pool_chunk *c = p->partial;
        partial_unlink(p, c);
        chunk_release(p, c);
    }
    if (p->spare)
        chunk_release(p, p->spare);
    p->spare = NULL;
}
