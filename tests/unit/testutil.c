/* testutil.c: helpers shared by the unit tests. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
