/*
 * config_values.h: validators for single config values (booleans, URLs,
 * channel names, ids), shared by the config loader and its tests.
 *
 * Each validator returns 0 when the value is valid, else -1 with a message in
 * msg that names what is valid. A validator that may see a credential in the
 * value (URLs with user information) never copies the value into msg.
 */
#ifndef CLAWBACK_CONFIG_CONFIG_VALUES_H
#define CLAWBACK_CONFIG_CONFIG_VALUES_H

#include <stddef.h>

#include "base/err.h"

/* Maximum URL length in the config, in bytes. */
#define CB_CONFIG_URL_MAX 2048
/* Maximum path length in the config, in bytes (Linux PATH_MAX). */
#define CB_CONFIG_PATH_MAX 4096
/* Minimum and maximum Retarus channel name length (the feed's documented rule). */
#define CB_CHANNEL_MIN 6
#define CB_CHANNEL_MAX 32
/* Maximum feed name length in [feed "NAME"]. */
#define CB_FEED_NAME_MAX 32

/* Parses yes/no, true/false, on/off, 1/0 (any case). */
int cb_config_parse_bool(const char *s, int *out);

/* Checks a Retarus channel name: 6 to 32 characters of [a-z0-9-]. */
int cb_config_check_channel(const char *s, char *msg, size_t msg_size);

/*
 * Checks a feed URL: wss://HOST[:PORT]/PATH, or ws:// for a loopback host
 * (tests); no user information, no fragment; the only query accepted is
 * channel=NAME. On success *base is the URL without its query (caller frees)
 * and *channel the channel from the query or NULL (caller frees).
 */
int cb_config_check_feed_url(const char *s, char **base, char **channel, char *msg, size_t msg_size);

/* Checks an https:// URL (http:// only for a loopback host), used for Graph endpoint overrides. */
int cb_config_check_https_url(const char *s, char *msg, size_t msg_size);

/* Checks a proxy URL: http, https, socks4, socks4a, socks5 or socks5h, without user information. */
int cb_config_check_proxy_url(const char *s, char *msg, size_t msg_size);

/* Checks a GUID written 8-4-4-4-12 in hex. */
int cb_config_check_guid(const char *s, char *msg, size_t msg_size);

/* Checks an Entra tenant: a GUID or a domain name such as contoso.onmicrosoft.com. */
int cb_config_check_tenant(const char *s, char *msg, size_t msg_size);

/* Checks a mailbox address: one '@', non-empty local part and domain, no blanks. */
int cb_config_check_address(const char *s, char *msg, size_t msg_size);

/* Checks a file path: not empty, at most CB_CONFIG_PATH_MAX bytes. */
int cb_config_check_path(const char *s, char *msg, size_t msg_size);

/*
 * Reads a whole regular file of at most max bytes into a NUL-terminated
 * buffer the caller frees. Used for the config and rules files.
 */
int cb_config_read_file(const char *path, size_t max, char **out, size_t *len, struct cb_err *err);

#endif
