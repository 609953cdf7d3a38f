/*
 * keytab.h: a small hash table from string keys to pointers.
 *
 * Used by the executor's limiter to find the state of a limit key
 * ("graph:APP:mailbox"). Open addressing with linear probing and
 * backward-shift deletion, so there are no tombstones. The hash is FNV-1a
 * with a per-table random seed, because keys contain recipient addresses
 * that come from the feed. Not thread-safe: one thread owns a table.
 *
 * The table does not copy keys: the caller keeps each key string alive (and
 * unchanged) while it is in the table, typically inside the value it points to.
 */
#ifndef CLAWBACK_EXECUTOR_KEYTAB_H
#define CLAWBACK_EXECUTOR_KEYTAB_H

#include <stddef.h>
#include <stdint.h>

struct cb_keytab_slot {
	const char *key; /* NULL: empty slot */
	uint64_t hash;
	void *value;
};

struct cb_keytab {
	struct cb_keytab_slot *slots;
	size_t cap; /* a power of two, or 0 before the first insert */
	size_t count;
	uint64_t seed;
};

/* Initialises an empty table; seed 0 picks a random seed. */
void cb_keytab_init(struct cb_keytab *t, uint64_t seed);
void cb_keytab_free(struct cb_keytab *t);

/* Returns the value stored under key, or NULL. */
void *cb_keytab_get(const struct cb_keytab *t, const char *key);

/* Stores value under key (replacing an earlier value); -1 when out of memory. */
int cb_keytab_put(struct cb_keytab *t, const char *key, void *value);

/* Removes key and returns its value, or NULL when it was not there. */
void *cb_keytab_remove(struct cb_keytab *t, const char *key);

/*
 * Calls fn for every entry; fn returns 1 to remove the entry (the table does
 * not free the value), 0 to keep it. fn must not change the table otherwise.
 */
void cb_keytab_sweep(struct cb_keytab *t, int (*fn)(const char *key, void *value, void *ctx),
		     void *ctx);

#endif
