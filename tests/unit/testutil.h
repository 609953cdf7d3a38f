/* testutil.h: helpers shared by the unit tests. */
#ifndef CLAWBACK_TESTS_TESTUTIL_H
#define CLAWBACK_TESTS_TESTUTIL_H

#include <stddef.h>

/* Creates a fresh temporary directory for one test and returns its path (static storage). */
const char *test_tmpdir(void);
/* Reads a whole file into a NUL-terminated buffer the caller frees; aborts the test on error. */
char *test_read_file(const char *path, size_t *len);
/* Writes text to dir/name and returns the full path (caller frees). */
char *test_write_file(const char *dir, const char *name, const char *text);

struct cb_store;

/* Returns a fresh store path (clawback.db in a new temporary directory); the caller frees it. */
char *test_store_path(void);
/* Opens the store at path; fails the test with SQLite's message when it cannot. */
struct cb_store *test_open_store(const char *path);

#endif
