/*
 * ws.h: a small WebSocket client transport (RFC 6455) for the Retarus feed.
 *
 * Runs in the feed thread; one struct cb_ws is one connection and is used by
 * one thread only. libcurl (CONNECT_ONLY) does TCP, the HTTP CONNECT proxy
 * with Basic or NTLM authentication, and TLS with verification always on.
 * This file then sends the HTTP/1.1 upgrade request itself, checks the 101
 * response and Sec-WebSocket-Accept, and frames with wslay's frame layer
 * (wslay_frame_*). The interface hides all of it, so the transport can move
 * to curl_ws_* once the target has curl >= 8.11.
 *
 * Untrusted input: the upgrade response and every frame from the server.
 * Message rules, all enforced here:
 *   - text messages, fragmented or not, are delivered whole to on_text;
 *   - a binary message, a text message that is not valid UTF-8, and a
 *     message larger than max_message are delivered to on_rejected with the
 *     first CB_WS_REJECT_KEEP bytes and the full size, and the connection
 *     stays up. RFC 6455 says to fail the connection on invalid UTF-8; we
 *     keep it because the feed has no acknowledgement or replay, so closing
 *     would bring nothing back and would put the following events at risk;
 *   - a message cut by the end of the connection is delivered to
 *     on_rejected as incomplete;
 *   - PINGs are answered; PONGs are reported to on_pong;
 *   - a close frame is answered and its code and reason are kept;
 *   - a protocol error (bad opcode, reserved bits, masked server frame,
 *     broken fragmentation) sends close 1002 and ends the connection.
 * wslay's event layer is not used because it fails the connection on
 * invalid UTF-8 and on oversized messages without handing over the bytes.
 */
#ifndef CLAWBACK_FEED_WS_H
#define CLAWBACK_FEED_WS_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* Largest message delivered; larger ones are rejected and skipped. PZD events are about 1 KB. */
#define CB_WS_DEFAULT_MAX_MESSAGE (1024 * 1024)
/* Bytes of a rejected message handed to on_rejected (the full size is passed too). */
#define CB_WS_REJECT_KEEP (64 * 1024)
/* Largest upgrade response header accepted from the server. */
#define CB_WS_MAX_HANDSHAKE (16 * 1024)
/* Largest queue of unsent control frames; more means the peer stopped reading. */
#define CB_WS_MAX_OUTPUT (64 * 1024)
/* Longest URL accepted from the configuration. */
#define CB_WS_MAX_URL 2048
/* Longest close reason kept (a control frame payload is at most 125 bytes). */
#define CB_WS_MAX_CLOSE_REASON 123

struct cb_ws;

struct cb_ws_options {
	const char *url;            /* wss://host[:port]/path?query */
	const char *bearer_token;   /* secret: sent as "Authorization: Bearer" only */
	const char *proxy;          /* NULL: libcurl reads https_proxy/all_proxy/no_proxy */
	const char *proxy_user;     /* NULL: none, or user info in the proxy URL */
	const char *proxy_password; /* secret */
	const char *proxy_auth;     /* "basic", "ntlm", "any" or NULL (any) */
	const char *ca_file;        /* NULL: the system store */
	int64_t connect_timeout_ms; /* TCP, proxy and TLS */
	int64_t handshake_timeout_ms; /* the upgrade request and response */
	size_t max_message;         /* 0: CB_WS_DEFAULT_MAX_MESSAGE */
	int cancel_fd;              /* -1, or an fd that becomes readable to abort the connect */
};

/* Results of cb_ws_connect() besides success. */
struct cb_ws_connect_info {
	int http_status;  /* status of a refused upgrade (e.g. 401), 0 when none was read */
	int auth_problem; /* 1 when http_status is 400, 401 or 403 */
	int cancelled;    /* 1 when cancel_fd aborted the attempt */
};

struct cb_ws_handlers {
	/* A complete text message; data is NUL-terminated for convenience. Return -1 to end the connection. */
	int (*on_text)(void *ctx, const char *data, size_t len);
	/* A rejected message: the first len bytes of its full_len bytes. Return -1 to end the connection. */
	int (*on_rejected)(void *ctx, const char *data, size_t len, uint64_t full_len, const char *reason);
	/* A PONG whose payload matches the last PING sent. */
	void (*on_pong)(void *ctx);
};

enum cb_ws_read_result {
	CB_WS_AGAIN = 0,  /* no more bytes for now: poll cb_ws_fd() for cb_ws_poll_events() */
	CB_WS_CLOSED = 1, /* the connection ended (close frame or end of stream); see cb_ws_close_info() */
	CB_WS_MORE = 2,   /* the read budget is used up: call again before blocking in poll() */
	CB_WS_ERROR = -1, /* the connection failed; err contains the reason */
};

/* Connects and upgrades; on failure info says whether the server refused (and with which status). */
int cb_ws_connect(const struct cb_ws_options *opt, struct cb_ws **out, struct cb_ws_connect_info *info,
		  struct cb_err *err);
/*
 * Reads and handles everything readable without blocking, including bytes
 * TLS has already decrypted, so call it before every poll().
 */
enum cb_ws_read_result cb_ws_read(struct cb_ws *ws, const struct cb_ws_handlers *h, void *ctx,
				  struct cb_err *err);
/* Queues a PING with a fresh payload and sends what the socket takes. */
int cb_ws_ping(struct cb_ws *ws, struct cb_err *err);
/* Queues a close frame (code, reason) and sends what the socket takes. */
int cb_ws_close(struct cb_ws *ws, uint16_t code, const char *reason, struct cb_err *err);
/* Sends queued frames as far as the socket takes them. */
int cb_ws_flush(struct cb_ws *ws, struct cb_err *err);
int cb_ws_fd(const struct cb_ws *ws);
/* POLLIN, plus POLLOUT while frames wait to be sent. */
short cb_ws_poll_events(const struct cb_ws *ws);
/* Close code and reason received (code 1005 when the frame had none, 1006 when none came). */
void cb_ws_close_info(const struct cb_ws *ws, uint16_t *code, const char **reason);
/* 1 when our close frame went out and the peer's close came back. */
int cb_ws_close_done(const struct cb_ws *ws);
void cb_ws_free(struct cb_ws *ws);

/* Pure helpers, exposed for unit tests. */

/* Writes a fresh random Sec-WebSocket-Key (base64 of 16 bytes) into key. */
int cb_ws_make_key(char key[25]);
/* Writes base64(SHA-1(key + RFC 6455 GUID)) into accept. */
int cb_ws_accept_for_key(const char *key, char accept[29]);

/* The parts of a wss:// URL that the upgrade needs. */
struct cb_ws_url {
	char https_url[CB_WS_MAX_URL]; /* the same URL with https://, for libcurl */
	char host_header[512];         /* host, or host:port when the port is not 443 */
	char target[CB_WS_MAX_URL];    /* path?query for the request line */
};

/* Splits a wss:// URL; anything else (ws://, userinfo, fragment, bad syntax) is an error. */
int cb_ws_parse_url(const char *url, struct cb_ws_url *out, struct cb_err *err);

/*
 * Checks an upgrade response header block (up to and including the blank
 * line): status 101, "Upgrade: websocket", "Connection: upgrade" and the
 * expected Sec-WebSocket-Accept. Sets *status to the HTTP status read (0 when
 * the status line is invalid).
 */
int cb_ws_check_response(const char *head, size_t len, const char *key, int *status, struct cb_err *err);

#endif
