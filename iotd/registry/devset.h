/*
 * devset.h - the devices of a registry snapshot: a set sorted by device id, persistent
 * (copy-on-write) so that consecutive snapshots share all of it but the part a change touched.
 * Internal to iotd/registry (registry_internal.h includes it).
 *
 * Two levels: a root array of pointers to chunks, each chunk a sorted array of up to
 * DEVSET_CHUNK pointers to device records. Records and chunks are immutable once sealed and
 * reference-counted, so a new set starts as a copy of the root (one pointer and one reference
 * per chunk) and a change copies only the chunk it touches. Changing one device in a set of N
 * costs a root copy of N / DEVSET_CHUNK * 4/3 pointers (about 8 KB at 100,000 devices, one
 * memcpy) and a chunk copy of at most DEVSET_CHUNK pointers; a batch of changes copies each
 * chunk at most once (an unsealed chunk, made by this edit, is changed in place). Lookups are
 * two binary searches; iteration is in id order.
 *
 * Threads: a set under construction belongs to one thread (a db thread under the registry's
 * change lock). devset_seal marks every chunk read-only before the snapshot is published;
 * after that only the atomic reference counts are ever written, by whichever thread drops a
 * snapshot.
 */
#ifndef IOTD_REGISTRY_DEVSET_H
#define IOTD_REGISTRY_DEVSET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* 128 pointers (1 KB) per chunk: a lookup's second binary search stays within 16 cache lines,
 * and a chunk copy is one short memcpy plus 128 reference increments. */
#define DEVSET_CHUNK 128

struct reg_device;

struct reg_devchunk {
    atomic_uint refs;
    bool sealed; /* written only by the set's builder; readers never look at it */
    unsigned n;
    struct reg_device *dev[DEVSET_CHUNK]; /* sorted by id, each holding a reference */
};

struct reg_devset {
    struct reg_devchunk **chunks; /* every id of chunks[i] sorts before every id of chunks[i+1] */
    size_t nchunks, cap;
    size_t count; /* devices in the set */
};

struct devset_iter {
    size_t chunk, index;
};

/* A new device record copying row and its strings into one allocation, one reference held by
 * the caller; NULL when out of memory. */
struct reg_device *reg_device_new(const struct reg_device *row);
void reg_device_retain(struct reg_device *d);
void reg_device_release(struct reg_device *d);

/* Fill an empty set with n records sorted by id (distinct ids), taking the caller's references
 * (also on failure: they are released). IOT_ENOMEM. */
int devset_build(struct reg_devset *set, struct reg_device **sorted, size_t n);
/* An empty dst becomes a copy of the sealed set src sharing its chunks. IOT_ENOMEM. */
int devset_copy(struct reg_devset *dst, const struct reg_devset *src);
/* Insert dev (taking the caller's reference) or replace the record with its id; *old gets the
 * replaced record with its reference (the caller releases it), or NULL. IOT_ENOMEM leaves the
 * set as it was and releases dev. */
int devset_put(struct reg_devset *set, struct reg_device *dev, struct reg_device **old);
/* Remove the record with this id; *old gets it with its reference, NULL (and IOT_ENOTFOUND)
 * when absent. IOT_ENOMEM leaves the set as it was. */
int devset_remove(struct reg_devset *set, const char *id, struct reg_device **old);
/* Make every chunk read-only: call before the set's snapshot is published. */
void devset_seal(struct reg_devset *set);
/* Drop the set's references (the chunks and records go when no other set holds them). */
void devset_free(struct reg_devset *set);

const struct reg_device *devset_find(const struct reg_devset *set, const char *id);
/* Iterate in id order: start with it = {0, 0}; NULL at the end. */
const struct reg_device *devset_next(const struct reg_devset *set, struct devset_iter *it);
/* An iterator whose first devset_next is the first record with an id after `after` (a page's
 * cursor): two binary searches, not a walk. */
struct devset_iter devset_after(const struct reg_devset *set, const char *after);

/* Call fn(old, new) for every record that differs between sets a (older) and b: added (old
 * NULL), removed (new NULL) or replaced. Chunks both sets share are skipped whole, so this
 * costs the root plus the chunks that changed. */
void devset_diff(const struct reg_devset *a, const struct reg_devset *b,
                 void (*fn)(const struct reg_device *old, const struct reg_device *now, void *arg),
                 void *arg);

#endif
