/* keytab.c: the string-keyed hash table of keytab.h. */
#include "executor/keytab.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Smallest table allocated, in slots. */
#define KEYTAB_MIN_CAP 16

static uint64_t hash_key(uint64_t seed, const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	/* Final mix, so the low bits used for the slot index depend on every byte. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

void cb_keytab_init(struct cb_keytab *t, uint64_t seed)
{
	memset(t, 0, sizeof(*t));
	if (seed == 0 && getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		seed = (uint64_t)(uintptr_t)t ^ 0x9e3779b97f4a7c15ULL;
	t->seed = seed;
}

void cb_keytab_free(struct cb_keytab *t)
{
	free(t->slots);
	t->slots = NULL;
	t->cap = 0;
	t->count = 0;
}

/* Returns the slot holding key, or the empty slot where it would go. */
static size_t find_slot(const struct cb_keytab *t, const char *key, uint64_t hash)
{
	size_t mask = t->cap - 1;
	size_t i = (size_t)hash & mask;

	while (t->slots[i].key) {
		if (t->slots[i].hash == hash && strcmp(t->slots[i].key, key) == 0)
			return i;
		i = (i + 1) & mask;
	}
	return i;
}

void *cb_keytab_get(const struct cb_keytab *t, const char *key)
{
	uint64_t hash;
	size_t i;

	if (t->count == 0)
		return NULL;
	hash = hash_key(t->seed, key);
	i = find_slot(t, key, hash);
	return t->slots[i].key ? t->slots[i].value : NULL;
}

/* Moves every entry into a fresh array of new_cap slots. */
static int rehash(struct cb_keytab *t, size_t new_cap)
{
	struct cb_keytab_slot *old = t->slots;
	size_t old_cap = t->cap;

	t->slots = calloc(new_cap, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return -1;
	}
	t->cap = new_cap;
	for (size_t j = 0; j < old_cap; j++) {
		if (!old[j].key)
			continue;
		t->slots[find_slot(t, old[j].key, old[j].hash)] = old[j];
	}
	free(old);
	return 0;
}

int cb_keytab_put(struct cb_keytab *t, const char *key, void *value)
{
	uint64_t hash = hash_key(t->seed, key);
	size_t i;

	/* Keep the load factor at or below 1/2, so probe sequences stay short. */
	if ((t->count + 1) * 2 > t->cap) {
		size_t new_cap = t->cap ? t->cap * 2 : KEYTAB_MIN_CAP;

		if (new_cap < t->cap || rehash(t, new_cap) != 0)
			return -1;
	}

	i = find_slot(t, key, hash);
	if (!t->slots[i].key)
		t->count++;
	t->slots[i].key = key;
	t->slots[i].hash = hash;
	t->slots[i].value = value;
	return 0;
}

/* Empties slot i and shifts later entries of its probe run back, so lookups still find them. */
static void delete_slot(struct cb_keytab *t, size_t i)
{
	size_t mask = t->cap - 1;
	size_t j = i;

	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!t->slots[j].key)
			break;
		home = (size_t)t->slots[j].hash & mask;
		/* Entry j may move to i only when i lies cyclically in [home, j). */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			t->slots[i] = t->slots[j];
			i = j;
		}
	}
	memset(&t->slots[i], 0, sizeof(t->slots[i]));
	t->count--;
}

void *cb_keytab_remove(struct cb_keytab *t, const char *key)
{
	uint64_t hash;
	size_t i;
	void *value;

	if (t->count == 0)
		return NULL;
	hash = hash_key(t->seed, key);
	i = find_slot(t, key, hash);
	if (!t->slots[i].key)
		return NULL;
	value = t->slots[i].value;
	delete_slot(t, i);
	return value;
}

void cb_keytab_sweep(struct cb_keytab *t, int (*fn)(const char *key, void *value, void *ctx),
		     void *ctx)
{
	struct cb_keytab_slot *old = t->slots;
	size_t cap = t->cap;

	if (t->count == 0)
		return;

	/* Rebuild into a fresh array, so each entry is visited exactly once. */
	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return;
	}
	t->count = 0;
	for (size_t j = 0; j < cap; j++) {
		if (!old[j].key || fn(old[j].key, old[j].value, ctx))
			continue;
		t->slots[find_slot(t, old[j].key, old[j].hash)] = old[j];
		t->count++;
	}
	free(old);
}
