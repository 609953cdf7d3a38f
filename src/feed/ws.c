/*
 * ws.c: the WebSocket client connection of ws.h: libcurl CONNECT_ONLY for
 * TCP, proxy and TLS, our own upgrade request, and wslay's frame layer for
 * framing. Message assembly, limits, UTF-8 checks and control frames are
 * here. Runs in the feed thread; every byte read is untrusted.
 * cb_ws_open_memory() (ws_internal.h, for tests and fuzzing) runs the same
 * reader over a byte buffer through its own wslay send and recv callbacks.
 */
#include "feed/ws.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

#include "base/buf.h"
#include "base/util.h"
#include "feed/utf8.h"
#include "feed/ws_internal.h"

/* Bytes read from the socket in one cb_ws_read() call before it returns CB_WS_MORE. */
#define WS_READ_BUDGET (1024 * 1024)
/* Largest upgrade request (the token is the only large part). */
#define WS_MAX_REQUEST 8192
/* Longest bearer token accepted; Retarus tokens are short opaque strings. */
#define WS_MAX_TOKEN 4096

enum ws_recv_state {
	WS_RECV_NONE,
	WS_RECV_DATA,
	WS_RECV_AGAIN,
	WS_RECV_BUDGET,
	WS_RECV_EOF,
	WS_RECV_ERROR,
};

struct cb_ws {
	CURL *curl;
	curl_socket_t fd;
	wslay_frame_context_ptr frame;
	size_t max_message;

	/* Bytes that arrived behind the 101 response, served before the socket. */
	char pending[CB_WS_MAX_HANDSHAKE];
	size_t pending_len;
	size_t pending_off;
	enum ws_recv_state recv_state;
	CURLcode recv_error;
	size_t read_budget;

	/* Encoded frames waiting for the socket. */
	struct cb_buf out;
	size_t out_off;

	/* The frame being received. */
	int in_frame;
	uint8_t frame_opcode;
	uint8_t frame_fin;
	uint64_t frame_len;
	uint64_t frame_off;
	uint8_t control[125];
	size_t control_len;

	/* The data message being assembled. */
	uint8_t msg_opcode; /* 0 between messages */
	struct cb_buf msg;
	uint64_t msg_size;
	int msg_overflow;
	struct cb_utf8 utf8;

	uint8_t ping_payload[8];
	int ping_outstanding;
	int close_sent;
	int close_received;
	uint16_t close_code;
	char close_reason[CB_WS_MAX_CLOSE_REASON + 1];
};

/* ---- socket I/O through libcurl ---- */

static ssize_t ws_recv_cb(uint8_t *buf, size_t len, int flags, void *user)
{
	struct cb_ws *ws = user;
	size_t n = 0;
	CURLcode rc;

	(void)flags;
	if (ws->pending_off < ws->pending_len) {
		n = ws->pending_len - ws->pending_off;
		if (n > len)
			n = len;
		memcpy(buf, ws->pending + ws->pending_off, n);
		ws->pending_off += n;
		ws->recv_state = WS_RECV_DATA;
		return (ssize_t)n;
	}
	if (ws->read_budget == 0) {
		ws->recv_state = WS_RECV_BUDGET;
		return -1;
	}
	if (len > ws->read_budget)
		len = ws->read_budget;

	rc = curl_easy_recv(ws->curl, buf, len, &n);
	if (rc == CURLE_AGAIN) {
		ws->recv_state = WS_RECV_AGAIN;
		return -1;
	}
	if (rc != CURLE_OK) {
		ws->recv_state = WS_RECV_ERROR;
		ws->recv_error = rc;
		return -1;
	}
	if (n == 0) {
		ws->recv_state = WS_RECV_EOF;
		return -1;
	}
	ws->read_budget -= n;
	ws->recv_state = WS_RECV_DATA;
	return (ssize_t)n;
}

/* Frames are encoded into ws->out; cb_ws_flush() moves them to the socket. */
static ssize_t ws_send_cb(const uint8_t *data, size_t len, int flags, void *user)
{
	struct cb_ws *ws = user;

	(void)flags;
	if (cb_buf_append(&ws->out, data, len) < 0)
		return -1;
	return (ssize_t)len;
}

static int ws_genmask_cb(uint8_t *buf, size_t len, void *user)
{
	(void)user;
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

int cb_ws_flush(struct cb_ws *ws, struct cb_err *err)
{
	while (ws->out_off < ws->out.len) {
		size_t n = 0;
		CURLcode rc = curl_easy_send(ws->curl, ws->out.data + ws->out_off, ws->out.len - ws->out_off, &n);

		if (rc == CURLE_AGAIN)
			return 0;
		if (rc != CURLE_OK)
			return cb_err_set(err, "sending to the feed server failed: %s", curl_easy_strerror(rc));
		ws->out_off += n;
	}
	cb_buf_reset(&ws->out);
	ws->out_off = 0;
	return 0;
}

/* Encodes one complete frame into the output queue and sends what the socket takes. */
static int ws_send_frame(struct cb_ws *ws, uint8_t opcode, const uint8_t *data, size_t len, struct cb_err *err)
{
	struct wslay_frame_iocb iocb;
	ssize_t r;

	/* 14 = the longest frame header; wslay_frame_send must never see a short write. */
	if (ws->out.len + len + 14 > CB_WS_MAX_OUTPUT)
		return cb_err_set(err, "feed server stopped reading: %d bytes of control frames unsent",
				  CB_WS_MAX_OUTPUT);
	memset(&iocb, 0, sizeof(iocb));
	iocb.fin = 1;
	iocb.opcode = opcode;
	iocb.mask = 1;
	iocb.data = data;
	iocb.data_length = len;
	iocb.payload_length = len;
	r = wslay_frame_send(ws->frame, &iocb);
	if (r < 0 || (size_t)r != len)
		return cb_err_set(err, "encoding a WebSocket frame failed (wslay error %zd)", r);
	return cb_ws_flush(ws, err);
}

int cb_ws_ping(struct cb_ws *ws, struct cb_err *err)
{
	if (ws->close_sent)
		return 0;
	if (RAND_bytes(ws->ping_payload, sizeof(ws->ping_payload)) != 1)
		return cb_err_set(err, "no random bytes for the PING payload (OpenSSL RAND_bytes failed)");
	ws->ping_outstanding = 1;
	return ws_send_frame(ws, WSLAY_PING, ws->ping_payload, sizeof(ws->ping_payload), err);
}

int cb_ws_close(struct cb_ws *ws, uint16_t code, const char *reason, struct cb_err *err)
{
	uint8_t payload[2 + CB_WS_MAX_CLOSE_REASON];
	size_t reason_len = reason ? strlen(reason) : 0;
	uint16_t net = htons(code);

	if (ws->close_sent)
		return 0;
	if (reason_len > CB_WS_MAX_CLOSE_REASON)
		reason_len = CB_WS_MAX_CLOSE_REASON;
	memcpy(payload, &net, 2);
	if (reason_len)
		memcpy(payload + 2, reason, reason_len);
	ws->close_sent = 1;
	return ws_send_frame(ws, WSLAY_CONNECTION_CLOSE, payload, 2 + reason_len, err);
}

int cb_ws_fd(const struct cb_ws *ws)
{
	return (int)ws->fd;
}

short cb_ws_poll_events(const struct cb_ws *ws)
{
	return (short)(POLLIN | (ws->out_off < ws->out.len ? POLLOUT : 0));
}

void cb_ws_close_info(const struct cb_ws *ws, uint16_t *code, const char **reason)
{
	*code = ws->close_code;
	*reason = ws->close_reason;
}

int cb_ws_close_done(const struct cb_ws *ws)
{
	return ws->close_sent && ws->close_received && ws->out_off >= ws->out.len;
}

void cb_ws_free(struct cb_ws *ws)
{
	if (!ws)
		return;
	if (ws->frame)
		wslay_frame_context_free(ws->frame);
	if (ws->curl)
		curl_easy_cleanup(ws->curl);
	cb_buf_free(&ws->out);
	cb_buf_free(&ws->msg);
	free(ws);
}

/* ---- messages ---- */

static void message_start(struct cb_ws *ws, uint8_t opcode)
{
	ws->msg_opcode = opcode;
	cb_buf_reset(&ws->msg);
	ws->msg_size = 0;
	ws->msg_overflow = 0;
	cb_utf8_init(&ws->utf8);
}

static void message_append(struct cb_ws *ws, const uint8_t *data, size_t len)
{
	size_t room = ws->max_message - ws->msg.len;

	ws->msg_size += len;
	cb_utf8_update(&ws->utf8, data, len);
	if (len > room) {
		ws->msg_overflow = 1;
		len = room;
	}
	/* Past the limit the bytes are skipped; the prefix stays for the rejection. */
	if (len && cb_buf_append(&ws->msg, data, len) < 0)
		ws->msg_overflow = 1;
}

static int message_reject(struct cb_ws *ws, const struct cb_ws_handlers *h, void *ctx, const char *reason,
			  struct cb_err *err)
{
	size_t keep = ws->msg.len < CB_WS_REJECT_KEEP ? ws->msg.len : CB_WS_REJECT_KEEP;
	int rc = h->on_rejected(ctx, ws->msg.data ? ws->msg.data : "", keep, ws->msg_size, reason);

	ws->msg_opcode = 0;
	cb_buf_reset(&ws->msg);
	if (rc < 0)
		return cb_err_set(err, "the receiver could not take a rejected message");
	return 0;
}

/* Delivers the finished message to on_text or, with the reason, to on_rejected. */
static int message_end(struct cb_ws *ws, const struct cb_ws_handlers *h, void *ctx, struct cb_err *err)
{
	char reason[160];
	int rc;

	if (ws->msg_overflow) {
		snprintf(reason, sizeof(reason), "message of %llu bytes exceeds the limit of %zu bytes",
			 (unsigned long long)ws->msg_size, ws->max_message);
		return message_reject(ws, h, ctx, reason, err);
	}
	if (ws->msg_opcode == WSLAY_BINARY_FRAME)
		return message_reject(ws, h, ctx, "binary message (the feed sends JSON text messages)", err);
	if (cb_utf8_finish(&ws->utf8) < 0) {
		if (ws->utf8.invalid)
			snprintf(reason, sizeof(reason), "text message is not valid UTF-8 (byte offset %llu)",
				 (unsigned long long)ws->utf8.bad_offset);
		else
			snprintf(reason, sizeof(reason), "text message ends inside a UTF-8 sequence");
		return message_reject(ws, h, ctx, reason, err);
	}

	rc = h->on_text(ctx, ws->msg.data ? ws->msg.data : "", ws->msg.len);
	ws->msg_opcode = 0;
	cb_buf_reset(&ws->msg);
	if (rc < 0)
		return cb_err_set(err, "the receiver could not take a message");
	return 0;
}

/* Hands a message cut short by the end of the connection to on_rejected. */
static void message_abandon(struct cb_ws *ws, const struct cb_ws_handlers *h, void *ctx)
{
	if (!ws->msg_opcode)
		return;
	message_reject(ws, h, ctx, "message incomplete: the connection ended inside a fragmented message", NULL);
}

/* ---- frames ---- */

static int protocol_error(struct cb_ws *ws, const char *what, struct cb_err *err)
{
	struct cb_err ignored;

	cb_ws_close(ws, WSLAY_CODE_PROTOCOL_ERROR, "protocol error", &ignored);
	return cb_err_set(err, "feed server broke the WebSocket protocol: %s", what);
}

static int handle_close_frame(struct cb_ws *ws, struct cb_err *err)
{
	uint16_t net;
	size_t reason_len;

	ws->close_received = 1;
	if (ws->control_len == 1)
		return protocol_error(ws, "close frame with a 1-byte payload", err);
	if (ws->control_len >= 2) {
		memcpy(&net, ws->control, 2);
		ws->close_code = ntohs(net);
		reason_len = ws->control_len - 2;
		memcpy(ws->close_reason, ws->control + 2, reason_len);
		ws->close_reason[reason_len] = '\0';
	} else {
		ws->close_code = WSLAY_CODE_NO_STATUS_RCVD;
	}
	cb_err_set(err, "feed server closed the connection with code %u", ws->close_code);
	if (ws->close_sent)
		return cb_ws_flush(ws, err);
	/* Echo the code, as RFC 6455 section 5.5.1 asks; no code when none came. */
	ws->close_sent = 1;
	return ws_send_frame(ws, WSLAY_CONNECTION_CLOSE, ws->control, ws->control_len >= 2 ? 2 : 0, err);
}

static int handle_control_frame(struct cb_ws *ws, const struct cb_ws_handlers *h, void *ctx, struct cb_err *err)
{
	switch (ws->frame_opcode) {
	case WSLAY_PING:
		if (ws->close_sent)
			return 0;
		return ws_send_frame(ws, WSLAY_PONG, ws->control, ws->control_len, err);
	case WSLAY_PONG:
		if (ws->ping_outstanding && ws->control_len == sizeof(ws->ping_payload) &&
		    memcmp(ws->control, ws->ping_payload, sizeof(ws->ping_payload)) == 0) {
			ws->ping_outstanding = 0;
			if (h->on_pong)
				h->on_pong(ctx);
		}
		return 0;
	default:
		return handle_close_frame(ws, err);
	}
}

/* Checks the header of a new frame against the message state. */
static int frame_start(struct cb_ws *ws, const struct wslay_frame_iocb *iocb, struct cb_err *err)
{
	if (iocb->rsv)
		return protocol_error(ws, "reserved bits set without a negotiated extension", err);
	if (iocb->mask)
		return protocol_error(ws, "masked frame from the server", err);

	ws->in_frame = 1;
	ws->frame_opcode = iocb->opcode;
	ws->frame_fin = iocb->fin;
	ws->frame_len = iocb->payload_length;
	ws->frame_off = 0;
	ws->control_len = 0;

	switch (iocb->opcode) {
	case WSLAY_TEXT_FRAME:
	case WSLAY_BINARY_FRAME:
		if (ws->msg_opcode)
			return protocol_error(ws, "new data message inside a fragmented message", err);
		message_start(ws, iocb->opcode);
		return 0;
	case WSLAY_CONTINUATION_FRAME:
		if (!ws->msg_opcode)
			return protocol_error(ws, "continuation frame outside a message", err);
		return 0;
	case WSLAY_PING:
	case WSLAY_PONG:
	case WSLAY_CONNECTION_CLOSE:
		return 0; /* wslay checked fin and the 125-byte limit */
	default:
		return protocol_error(ws, "reserved opcode", err);
	}
}

static int handle_chunk(struct cb_ws *ws, const struct wslay_frame_iocb *iocb, const struct cb_ws_handlers *h,
			void *ctx, struct cb_err *err)
{
	if (!ws->in_frame && frame_start(ws, iocb, err) < 0)
		return -1;

	if (wslay_is_ctrl_frame(ws->frame_opcode)) {
		memcpy(ws->control + ws->control_len, iocb->data, iocb->data_length);
		ws->control_len += iocb->data_length;
	} else {
		message_append(ws, iocb->data, iocb->data_length);
	}
	ws->frame_off += iocb->data_length;
	if (ws->frame_off < ws->frame_len)
		return 0;

	ws->in_frame = 0;
	if (wslay_is_ctrl_frame(ws->frame_opcode))
		return handle_control_frame(ws, h, ctx, err);
	if (ws->frame_fin)
		return message_end(ws, h, ctx, err);
	return 0;
}

/* Turns the state of the last socket read into the result of cb_ws_read(). */
static enum cb_ws_read_result read_stopped(struct cb_ws *ws, const struct cb_ws_handlers *h, void *ctx,
					   struct cb_err *err)
{
	switch (ws->recv_state) {
	case WS_RECV_EOF:
		message_abandon(ws, h, ctx);
		ws->close_code = WSLAY_CODE_ABNORMAL_CLOSURE;
		cb_err_set(err, "feed server closed the connection without a close frame");
		return CB_WS_CLOSED;
	case WS_RECV_ERROR:
		message_abandon(ws, h, ctx);
		cb_err_set(err, "receiving from the feed server failed: %s", curl_easy_strerror(ws->recv_error));
		return CB_WS_ERROR;
	case WS_RECV_BUDGET:
		return cb_ws_flush(ws, err) < 0 ? CB_WS_ERROR : CB_WS_MORE;
	default:
		return cb_ws_flush(ws, err) < 0 ? CB_WS_ERROR : CB_WS_AGAIN;
	}
}

enum cb_ws_read_result cb_ws_read(struct cb_ws *ws, const struct cb_ws_handlers *h, void *ctx,
				  struct cb_err *err)
{
	ws->read_budget = WS_READ_BUDGET;
	for (;;) {
		struct wslay_frame_iocb iocb;
		ssize_t r;

		memset(&iocb, 0, sizeof(iocb));
		ws->recv_state = WS_RECV_NONE;
		r = wslay_frame_recv(ws->frame, &iocb);
		if (r >= 0) {
			if (handle_chunk(ws, &iocb, h, ctx, err) < 0) {
				message_abandon(ws, h, ctx);
				return CB_WS_ERROR;
			}
			if (ws->close_received)
				return CB_WS_CLOSED;
			continue;
		}
		if (r == WSLAY_ERR_PROTO) {
			message_abandon(ws, h, ctx);
			protocol_error(ws, "invalid frame header", err);
			return CB_WS_ERROR;
		}
		if (r != WSLAY_ERR_WANT_READ) {
			message_abandon(ws, h, ctx);
			cb_err_set(err, "reading a WebSocket frame failed (wslay error %zd)", r);
			return CB_WS_ERROR;
		}
		if (ws->recv_state != WS_RECV_DATA)
			return read_stopped(ws, h, ctx, err);
	}
}

/* ---- connecting ---- */

static int cancel_requested(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return fd >= 0 && poll(&p, 1, 0) > 0;
}

static int xferinfo_cb(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	const struct cb_ws_options *opt = user;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return cancel_requested(opt->cancel_fd);
}

static long proxy_auth_mask(const char *name)
{
	if (name && strcasecmp(name, "basic") == 0)
		return (long)CURLAUTH_BASIC;
	if (name && strcasecmp(name, "ntlm") == 0)
		return (long)CURLAUTH_NTLM;
	return (long)CURLAUTH_ANY;
}

static void set_curl_options(CURL *curl, const struct cb_ws_options *opt, const struct cb_ws_url *url,
			     char *errbuf)
{
	curl_easy_setopt(curl, CURLOPT_URL, url->https_url);
	curl_easy_setopt(curl, CURLOPT_CONNECT_ONLY, 1L);
	/* We speak the HTTP/1.1 upgrade ourselves, so ALPN must not pick h2. */
	curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)opt->connect_timeout_ms);
	if (opt->ca_file)
		curl_easy_setopt(curl, CURLOPT_CAINFO, opt->ca_file);
	/*
	 * libcurl 7.88 calls the progress callback while it connects, so a stop
	 * aborts a hanging TLS handshake (measured by hand: 0.7 s).
	 * NOTE: no automated test covers this path.
	 */
	if (opt->cancel_fd >= 0) {
		curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
		curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)opt);
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	}

	/* Without a configured proxy libcurl reads https_proxy, all_proxy and no_proxy. */
	if (opt->proxy)
		curl_easy_setopt(curl, CURLOPT_PROXY, opt->proxy);
	curl_easy_setopt(curl, CURLOPT_HTTPPROXYTUNNEL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROXYAUTH, proxy_auth_mask(opt->proxy_auth));
	if (opt->proxy_user) {
		curl_easy_setopt(curl, CURLOPT_PROXYUSERNAME, opt->proxy_user);
		curl_easy_setopt(curl, CURLOPT_PROXYPASSWORD, opt->proxy_password ? opt->proxy_password : "");
	}
}

static int curl_connect(struct cb_ws *ws, const struct cb_ws_options *opt, const struct cb_ws_url *url,
			struct cb_ws_connect_info *info, struct cb_err *err)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	long proxy_code = 0;
	CURLcode rc;

	set_curl_options(ws->curl, opt, url, errbuf);
	rc = curl_easy_perform(ws->curl);
	/* The password copy inside curl is dropped with the handle; the pointer is ours. */
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		info->cancelled = 1;
		return cb_err_set(err, "connecting to %s was cancelled", url->host_header);
	}
	if (rc != CURLE_OK) {
		curl_easy_getinfo(ws->curl, CURLINFO_HTTP_CONNECTCODE, &proxy_code);
		if (proxy_code >= 300)
			return cb_err_set(err, "proxy rejected the tunnel to %s with HTTP status %ld%s",
					  url->host_header, proxy_code,
					  proxy_code == 407 ? " (check the proxy user, password and auth type)" : "");
		return cb_err_set(err, "connecting to %s failed: %s", url->host_header,
				  errbuf[0] ? errbuf : curl_easy_strerror(rc));
	}
	if (curl_easy_getinfo(ws->curl, CURLINFO_ACTIVESOCKET, &ws->fd) != CURLE_OK ||
	    ws->fd == CURL_SOCKET_BAD)
		return cb_err_set(err, "connecting to %s gave no socket", url->host_header);
	return 0;
}

/* Waits until fd is ready for events or cancel_fd fires; -1 on timeout or cancel. */
static int wait_socket(struct cb_ws *ws, short events, int64_t deadline, const struct cb_ws_options *opt,
		       struct cb_ws_connect_info *info, struct cb_err *err)
{
	struct pollfd p[2] = { { .fd = ws->fd, .events = events }, { .fd = opt->cancel_fd, .events = POLLIN } };
	int64_t left = deadline - cb_mono_ms();
	int n;

	if (left <= 0)
		return cb_err_set(err, "the WebSocket upgrade timed out after %lld ms",
				  (long long)opt->handshake_timeout_ms);
	n = poll(p, opt->cancel_fd >= 0 ? 2 : 1, (int)left);
	if (n < 0 && errno != EINTR)
		return cb_err_set(err, "poll failed during the WebSocket upgrade: %s", strerror(errno));
	if (opt->cancel_fd >= 0 && (p[1].revents & POLLIN)) {
		info->cancelled = 1;
		return cb_err_set(err, "the WebSocket upgrade was cancelled");
	}
	return 0;
}

static int send_all(struct cb_ws *ws, const char *data, size_t len, int64_t deadline,
		    const struct cb_ws_options *opt, struct cb_ws_connect_info *info, struct cb_err *err)
{
	while (len) {
		size_t n = 0;
		CURLcode rc = curl_easy_send(ws->curl, data, len, &n);

		if (rc == CURLE_AGAIN) {
			if (wait_socket(ws, POLLOUT, deadline, opt, info, err) < 0)
				return -1;
			continue;
		}
		if (rc != CURLE_OK)
			return cb_err_set(err, "sending the upgrade request failed: %s", curl_easy_strerror(rc));
		data += n;
		len -= n;
	}
	return 0;
}

static int build_request(char *req, size_t size, const struct cb_ws_url *url, const char *key, const char *token,
			 struct cb_err *err)
{
	size_t i, token_len = strlen(token);
	int n;

	if (token_len == 0 || token_len > WS_MAX_TOKEN)
		return cb_err_set(err, "feed token is empty or longer than %d bytes", WS_MAX_TOKEN);
	for (i = 0; i < token_len; i++)
		if ((unsigned char)token[i] <= 0x20 || (unsigned char)token[i] == 0x7F)
			return cb_err_set(err, "feed token contains a space or control character at position %zu",
					  i);
	n = snprintf(req, size,
		     "GET %s HTTP/1.1\r\n"
		     "Host: %s\r\n"
		     "Upgrade: websocket\r\n"
		     "Connection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\n"
		     "Authorization: Bearer %s\r\n"
		     "User-Agent: clawback/" CLAWBACK_VERSION "\r\n"
		     "\r\n",
		     url->target, url->host_header, key, token);
	if (n < 0 || (size_t)n >= size)
		return cb_err_set(err, "upgrade request longer than %zu bytes", size);
	return n;
}

/* Reads the response header; bytes behind the blank line stay in ws->pending. */
static int read_response(struct cb_ws *ws, int64_t deadline, const struct cb_ws_options *opt,
			 struct cb_ws_connect_info *info, size_t *head_len, struct cb_err *err)
{
	size_t len = 0;

	for (;;) {
		size_t n = 0;
		CURLcode rc = curl_easy_recv(ws->curl, ws->pending + len, sizeof(ws->pending) - 1 - len, &n);
		char *end;

		if (rc == CURLE_AGAIN) {
			if (wait_socket(ws, POLLIN, deadline, opt, info, err) < 0)
				return -1;
			continue;
		}
		if (rc != CURLE_OK)
			return cb_err_set(err, "reading the upgrade response failed: %s", curl_easy_strerror(rc));
		if (n == 0)
			return cb_err_set(err, "feed server closed the connection during the upgrade");
		len += n;
		ws->pending[len] = '\0';
		end = memmem(ws->pending, len, "\r\n\r\n", 4);
		if (end) {
			*head_len = (size_t)(end - ws->pending) + 4;
			ws->pending_off = *head_len;
			ws->pending_len = len;
			return 0;
		}
		if (len >= sizeof(ws->pending) - 1)
			return cb_err_set(err, "upgrade response header longer than %d bytes", CB_WS_MAX_HANDSHAKE);
	}
}

static int upgrade(struct cb_ws *ws, const struct cb_ws_options *opt, const struct cb_ws_url *url,
		   struct cb_ws_connect_info *info, struct cb_err *err)
{
	int64_t deadline = cb_mono_ms() + opt->handshake_timeout_ms;
	char request[WS_MAX_REQUEST];
	char key[25];
	size_t head_len = 0;
	int n, rc;

	if (cb_ws_make_key(key) < 0)
		return cb_err_set(err, "no random bytes for Sec-WebSocket-Key (OpenSSL RAND_bytes failed)");
	n = build_request(request, sizeof(request), url, key, opt->bearer_token ? opt->bearer_token : "", err);
	if (n < 0)
		return -1;
	rc = send_all(ws, request, (size_t)n, deadline, opt, info, err);
	OPENSSL_cleanse(request, sizeof(request));
	if (rc < 0 || read_response(ws, deadline, opt, info, &head_len, err) < 0)
		return -1;

	if (cb_ws_check_response(ws->pending, head_len, key, &info->http_status, err) < 0) {
		info->auth_problem = info->http_status == 400 || info->http_status == 401 || info->http_status == 403;
		return -1;
	}
	return 0;
}

int cb_ws_connect(const struct cb_ws_options *opt, struct cb_ws **out, struct cb_ws_connect_info *info,
		  struct cb_err *err)
{
	struct wslay_frame_callbacks callbacks = { ws_send_cb, ws_recv_cb, ws_genmask_cb };
	struct cb_ws_url url;
	struct cb_ws *ws;

	*out = NULL;
	memset(info, 0, sizeof(*info));
	if (cb_ws_parse_url(opt->url, &url, err) < 0)
		return -1;
	ws = calloc(1, sizeof(*ws));
	if (!ws)
		return cb_err_set(err, "out of memory for the feed connection");
	ws->max_message = opt->max_message ? opt->max_message : CB_WS_DEFAULT_MAX_MESSAGE;
	ws->fd = CURL_SOCKET_BAD;
	cb_buf_init(&ws->out, CB_WS_MAX_OUTPUT);
	cb_buf_init(&ws->msg, ws->max_message);
	ws->close_code = WSLAY_CODE_ABNORMAL_CLOSURE;

	ws->curl = curl_easy_init();
	if (!ws->curl || wslay_frame_context_init(&ws->frame, &callbacks, ws) != 0) {
		cb_ws_free(ws);
		return cb_err_set(err, "out of memory for the feed connection");
	}
	if (curl_connect(ws, opt, &url, info, err) < 0 || upgrade(ws, opt, &url, info, err) < 0) {
		cb_ws_free(ws);
		return -1;
	}
	*out = ws;
	return 0;
}

/* ---- in-memory connections (ws_internal.h) ---- */

/*
 * A connection over a byte buffer. struct cb_ws comes first, so the pointer
 * handed out is the allocation and cb_ws_free() releases it unchanged.
 */
struct ws_memory {
	struct cb_ws ws;
	const uint8_t *data;
	size_t len;
	size_t off;
	size_t chunk;
	int starved; /* the last read returned bytes: the next one "would block" */
};

/* Serves the buffer with the recv_state values ws_recv_cb sets for a socket. */
static ssize_t ws_memory_recv_cb(uint8_t *buf, size_t len, int flags, void *user)
{
	struct ws_memory *m = user;
	size_t n = m->len - m->off;

	(void)flags;
	if (m->starved) {
		m->starved = 0;
		m->ws.recv_state = WS_RECV_AGAIN;
		return -1;
	}
	if (n == 0) {
		m->ws.recv_state = WS_RECV_EOF;
		return -1;
	}
	if (m->ws.read_budget == 0) {
		m->ws.recv_state = WS_RECV_BUDGET;
		return -1;
	}
	if (n > len)
		n = len;
	if (m->chunk && n > m->chunk)
		n = m->chunk;
	if (n > m->ws.read_budget)
		n = m->ws.read_budget;
	memcpy(buf, m->data + m->off, n);
	m->off += n;
	m->ws.read_budget -= n;
	m->starved = 1;
	m->ws.recv_state = WS_RECV_DATA;
	return (ssize_t)n;
}

/* Drops an encoded frame; ws->out stays empty, so cb_ws_flush() never reaches curl. */
static ssize_t ws_memory_send_cb(const uint8_t *data, size_t len, int flags, void *user)
{
	(void)data;
	(void)flags;
	(void)user;
	return (ssize_t)len;
}

int cb_ws_open_memory(const uint8_t *data, size_t len, size_t chunk, size_t max_message, struct cb_ws **out,
		      struct cb_err *err)
{
	struct wslay_frame_callbacks callbacks = { ws_memory_send_cb, ws_memory_recv_cb, ws_genmask_cb };
	struct ws_memory *m;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return cb_err_set(err, "out of memory for an in-memory WebSocket connection");
	m->data = data;
	m->len = len;
	m->chunk = chunk;

	/* The same initial state as cb_ws_connect() leaves after the upgrade. */
	m->ws.max_message = max_message ? max_message : CB_WS_DEFAULT_MAX_MESSAGE;
	m->ws.fd = CURL_SOCKET_BAD;
	cb_buf_init(&m->ws.out, CB_WS_MAX_OUTPUT);
	cb_buf_init(&m->ws.msg, m->ws.max_message);
	m->ws.close_code = WSLAY_CODE_ABNORMAL_CLOSURE;
	if (wslay_frame_context_init(&m->ws.frame, &callbacks, m) != 0) {
		cb_ws_free(&m->ws);
		return cb_err_set(err, "out of memory for an in-memory WebSocket connection");
	}
	*out = &m->ws;
	return 0;
}
