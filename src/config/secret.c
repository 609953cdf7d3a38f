/*
 * secret.c: reading secret files (cb_secret_read), the file checks of
 * check-config (cb_config_check_files) and the bounded whole-file reader.
 *
 * Runs in whichever thread needs a secret (feed threads for the token, the
 * executor for Graph credentials) and in the CLI. Secret content is never
 * copied into an error message, and every buffer that held it is wiped.
 */
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_values.h"
#include "config/ini_reader.h"

/*
 * Opens path and reads at most max bytes into a fresh buffer. Reads one byte
 * more than max, so a file that grows between fstat and read is still caught.
 */
static int read_limited(int fd, const char *path, size_t max, char **out, size_t *len, struct cb_err *err)
{
	char *data = malloc(max + 2);
	size_t used = 0;

	if (!data)
		return cb_err_set(err, "out of memory reading %s", path);
	for (;;) {
		ssize_t n = read(fd, data + used, max + 1 - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;

			explicit_bzero(data, max + 2);
			free(data);
			return cb_err_set(err, "cannot read %s: %s", path, strerror(saved));
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > max) {
			explicit_bzero(data, max + 2);
			free(data);
			return cb_err_set(err, "%s is larger than %zu bytes", path, max);
		}
	}
	data[used] = '\0';
	*out = data;
	*len = used;
	return 0;
}

/* Opens path for reading if it is a regular file. O_NONBLOCK keeps a FIFO from blocking the open. */
static int open_regular(const char *path, struct stat *st, struct cb_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return cb_err_set(err, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return cb_err_set(err, "%s is not a regular file", path);
	}
	return fd;
}

int cb_config_read_file(const char *path, size_t max, char **out, size_t *len, struct cb_err *err)
{
	struct stat st;
	int fd = open_regular(path, &st, err);
	int rc;

	if (fd < 0)
		return -1;
	rc = read_limited(fd, path, max, out, len, err);
	close(fd);
	return rc;
}

/*
 * Resolves a *_file path: absolute as is, relative inside
 * $CREDENTIALS_DIRECTORY. Sets *in_credentials when it did so.
 */
static int resolve_secret_path(const char *path, char *out, size_t size, int *in_credentials, struct cb_err *err)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");

	*in_credentials = 0;
	if (!path || !*path)
		return cb_err_set(err, "empty secret file path");
	if (path[0] == '/') {
		if (strlen(path) >= size)
			return cb_err_set(err, "secret file path longer than %zu bytes", size - 1);
		memcpy(out, path, strlen(path) + 1);
		return 0;
	}
	if (!dir || !*dir)
		return cb_err_set(err, "relative secret file path '%s' needs $CREDENTIALS_DIRECTORY (systemd "
				       "LoadCredential=); use an absolute path otherwise", path);
	if (strstr(path, "..") || (size_t)snprintf(out, size, "%s/%s", dir, path) >= size)
		return cb_err_set(err, "invalid secret file path '%s': use a plain name inside "
				       "$CREDENTIALS_DIRECTORY", path);
	*in_credentials = 1;
	return 0;
}

/* Reads the secret file's bytes unchanged; an empty file is an error. */
static int read_secret_bytes(const char *path, char **out, size_t *len, char *full, size_t full_size,
			     struct cb_err *err)
{
	struct stat st;
	int in_credentials;
	int fd;
	int rc;

	*out = NULL;
	*len = 0;
	if (resolve_secret_path(path, full, full_size, &in_credentials, err) < 0)
		return -1;
	fd = open_regular(full, &st, err);
	if (fd < 0)
		return -1;
	rc = read_limited(fd, full, CB_SECRET_MAX_BYTES, out, len, err);
	close(fd);
	if (rc == 0 && *len == 0) {
		free(*out);
		*out = NULL;
		return cb_err_set(err, "secret file %s is empty", full);
	}
	return rc;
}

int cb_secret_read_raw(const char *path, char **out, size_t *len, struct cb_err *err)
{
	char full[CB_CONFIG_PATH_MAX + 256];

	return read_secret_bytes(path, out, len, full, sizeof(full), err);
}

int cb_secret_read(const char *path, char **out, size_t *len, struct cb_err *err)
{
	char full[CB_CONFIG_PATH_MAX + 256];
	char *data;
	size_t n;

	*out = NULL;
	*len = 0;
	if (read_secret_bytes(path, &data, &n, full, sizeof(full), err) < 0)
		return -1;

	if (n > 0 && data[n - 1] == '\n') {
		n--;
		if (n > 0 && data[n - 1] == '\r')
			n--;
		data[n] = '\0';
	}
	if (n == 0) {
		free(data);
		*out = NULL;
		*len = 0;
		return cb_err_set(err, "secret file %s is empty", full);
	}
	*out = data;
	*len = n;
	return 0;
}

void cb_secret_free(char *secret, size_t len)
{
	if (!secret)
		return;
	/* Bytes past len are the NUL and a stripped newline, nothing secret. */
	explicit_bzero(secret, len);
	free(secret);
}

/* Checks one file named by a config key; appends a problem when it is unusable. */
static void check_file(struct cb_problems *p, const char *file, const char *section, const char *key,
		       const char *path, int secret)
{
	char full[CB_CONFIG_PATH_MAX + 256];
	struct cb_err err;
	struct stat st;
	int in_credentials = 0;
	int fd;

	if (!path)
		return;
	if (secret) {
		if (resolve_secret_path(path, full, sizeof(full), &in_credentials, &err) < 0) {
			cb_problems_add(p, "%s: %s %s: %s", file, section, key, err.msg);
			return;
		}
	} else {
		snprintf(full, sizeof(full), "%s", path);
	}
	fd = open_regular(full, &st, &err);
	if (fd < 0) {
		cb_problems_add(p, "%s: %s %s: %s", file, section, key, err.msg);
		return;
	}
	close(fd);
	if (secret && st.st_size > CB_SECRET_MAX_BYTES)
		cb_problems_add(p, "%s: %s %s: %s is larger than %d bytes", file, section, key, full,
				CB_SECRET_MAX_BYTES);
	if (secret && !in_credentials && (st.st_mode & (S_IRWXG | S_IRWXO)))
		cb_problems_add(p, "%s: %s %s: %s is accessible by group or others (mode %04o): "
				   "run chmod 600 on it",
				file, section, key, full, (unsigned)(st.st_mode & 07777));
}

int cb_config_check_files(const struct cb_config *cfg, char **problems)
{
	const struct cb_graph_config *g = &cfg->graph;
	const char *file = cfg->path ? cfg->path : "(config)";
	struct cb_problems p;
	char label[64];

	cb_problems_init(&p);
	for (size_t i = 0; i < cfg->feed_count; i++) {
		const struct cb_feed_config *f = &cfg->feeds[i];

		snprintf(label, sizeof(label), "[feed \"%.40s\"]", f->name);
		check_file(&p, file, label, "token_file", f->token_file, 1);
		check_file(&p, file, label, "proxy_password_file", f->proxy_password_file, 1);
		check_file(&p, file, label, "ca_file", f->ca_file, 0);
	}
	if (g->enabled) {
		check_file(&p, file, "[graph]", "client_secret_file", g->client_secret_file, 1);
		check_file(&p, file, "[graph]", "certificate_file", g->certificate_file, 0);
		check_file(&p, file, "[graph]", "key_file", g->key_file, 1);
		check_file(&p, file, "[graph]", "pkcs12_password_file", g->pkcs12_password_file, 1);
		check_file(&p, file, "[graph]", "proxy_password_file", g->proxy_password_file, 1);
		check_file(&p, file, "[graph]", "ca_file", g->ca_file, 0);
	}
	return cb_problems_finish(&p, problems);
}
