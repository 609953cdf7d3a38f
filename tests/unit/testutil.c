/* testutil.c: helpers shared by the unit tests. */
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

const char *test_tmpdir(void)
{
	static char path[256];

	snprintf(path, sizeof(path), "/tmp/clawback-test-XXXXXX");
	if (!mkdtemp(path)) {
		perror("mkdtemp");
		abort();
	}
	return path;
}

char *test_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data;
	long size;

	if (!f) {
		perror(path);
		abort();
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	data = malloc((size_t)size + 1);
	if (!data || fread(data, 1, (size_t)size, f) != (size_t)size)
		abort();
	data[size] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)size;
	return data;
}

char *test_write_file(const char *dir, const char *name, const char *text)
{
	size_t size = strlen(dir) + strlen(name) + 2;
	char *path = malloc(size);
	FILE *f;

	if (!path)
		abort();
	snprintf(path, size, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		abort();
	}
	return path;
}

char *test_store_path(void)
{
	const char *dir = test_tmpdir();
	size_t size = strlen(dir) + 16;
	char *path = malloc(size);

	assert_non_null(path);
	snprintf(path, size, "%s/clawback.db", dir);
	return path;
}

struct cb_store *test_open_store(const char *path)
{
	struct cb_store *store = NULL;
	struct cb_err err = {{0}};

	if (cb_store_open(path, &store, &err) < 0)
		fail_msg("cb_store_open: %s", err.msg);
	return store;
}
