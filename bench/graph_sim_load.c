/*
 * graph_sim_load.c: load client for the Graph simulator's capacity benchmark.
 *
 * Gets a token with a client secret, then runs a search-and-move campaign
 * the way clawback does: for each mailbox user0@DOMAIN .. user{N-1}@DOMAIN,
 * GET .../messages?$filter=internetMessageId eq '...' and POST .../move of
 * every hit to junkemail. It keeps --concurrency mailboxes in progress over
 * HTTP/2 connections multiplexed by libcurl. One thread drives one multi
 * handle with epoll and curl_multi_socket_action, which touches only the
 * transfers whose sockets are ready, so the client costs little CPU next to
 * the simulator it measures.
 * Prints one key=value line with requests, wall seconds, requests per
 * second, failures, retries, the statuses seen and the client's own CPU
 * seconds. A search that fails at the HTTP/2 layer (a refused stream) is
 * sent again, at most MAX_ATTEMPTS times in all.
 *
 * Build: cc -O2 -o graph_sim_load bench/graph_sim_load.c \
 *            $(pkg-config --cflags --libs libcurl)
 * Usage: graph_sim_load --port N --ca FILE [--host ADDR] [--tenant T]
 *            [--client-id ID] [--client-secret S] [--domain D]
 *            [--mailboxes N] [--message-id ID] [--concurrency N]
 *            [--connections N]
 *
 * Untrusted input: the simulator's responses, read into bounded buffers
 * (RESPONSE_MAX); only "id" values are taken from search results.
 * Known limits: at most MAX_HITS moves per mailbox; ids are copied into URLs
 * unescaped (Graph ids are base64url plus '=' and '-').
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Response bytes kept per request: a search result for one message is about 500 bytes. */
#define RESPONSE_MAX 65536
/* Moves issued per mailbox from one search (the campaign fixture has one hit). */
#define MAX_HITS 16
/* Maximum length of a message id taken from a search result. */
#define ID_MAX 256
/* Maximum length of a URL built. */
#define URL_MAX 2048
/* Socket events taken from epoll per wait. */
#define EVENTS_PER_WAIT 256
/* Distinct HTTP statuses counted (0..599). */
#define STATUS_MAX 600
/* Attempts per search that fails at the HTTP/2 layer (Node's server refuses streams under
 * load). Moves are not sent again, because one may have been applied before its stream failed. */
#define MAX_ATTEMPTS 3

struct options {
	const char *host;
	long port;
	const char *ca;
	const char *tenant;
	const char *client_id;
	const char *client_secret;
	const char *domain;
	const char *message_id;
	long mailboxes;
	long concurrency;
	long connections;
};

/* One mailbox in progress: its search, then its moves, one request at a time. */
struct job {
	CURL *easy;
	long mailbox;
	char response[RESPONSE_MAX];
	size_t response_len;
	char ids[MAX_HITS][ID_MAX];
	int hit_count;
	int next_hit;
	int is_search;
	int attempts;
};

struct campaign {
	struct options opt;
	CURLM *multi;
	struct curl_slist *get_headers;
	struct curl_slist *post_headers;
	char filter[1024];
	long next_mailbox;
	long requests;
	long statuses[STATUS_MAX];
	long failures;
	long retries;
	int epoll_fd;
	double timer_deadline;		/* when curl wants its timeout action; < 0: none */
};

static size_t collect(char *data, size_t size, size_t count, void *user)
{
	struct job *job = user;
	size_t n = size * count;
	size_t room = RESPONSE_MAX - 1 - job->response_len;
	size_t take = n < room ? n : room;

	memcpy(job->response + job->response_len, data, take);
	job->response_len += take;
	job->response[job->response_len] = '\0';
	return n;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void set_common(struct campaign *c, CURL *easy, struct job *job)
{
	curl_easy_setopt(easy, CURLOPT_CAINFO, c->opt.ca);
	curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, job);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, job);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
}

/* Take up to MAX_HITS "id":"..." values from a search response. */
static int parse_ids(struct job *job)
{
	const char *p = job->response;
	int n = 0;

	while (n < MAX_HITS && (p = strstr(p, "\"id\":\"")) != NULL) {
		const char *start = p + 6;
		const char *end = strchr(start, '"');
		size_t len;

		if (!end)
			break;
		len = (size_t)(end - start);
		if (len > 0 && len < ID_MAX) {
			memcpy(job->ids[n], start, len);
			job->ids[n][len] = '\0';
			n++;
		}
		p = end;
	}
	return n;
}

static int start_search(struct campaign *c, struct job *job)
{
	char url[URL_MAX];

	job->mailbox = c->next_mailbox++;
	job->is_search = 1;
	job->attempts = 1;
	job->response_len = 0;
	snprintf(url, sizeof(url), "https://%s:%ld/v1.0/users/user%ld%%40%s/messages?%%24filter=%s&%%24select=id,parentFolderId",
		 c->opt.host, c->opt.port, job->mailbox, c->opt.domain, c->filter);
	curl_easy_setopt(job->easy, CURLOPT_URL, url);
	curl_easy_setopt(job->easy, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(job->easy, CURLOPT_HTTPHEADER, c->get_headers);
	return curl_multi_add_handle(c->multi, job->easy) == CURLM_OK ? 0 : -1;
}

static int start_move(struct campaign *c, struct job *job)
{
	static const char body[] = "{\"destinationId\":\"junkemail\"}";
	char url[URL_MAX];

	job->is_search = 0;
	job->attempts = 1;
	job->response_len = 0;
	snprintf(url, sizeof(url), "https://%s:%ld/v1.0/users/user%ld%%40%s/messages/%s/move",
		 c->opt.host, c->opt.port, job->mailbox, c->opt.domain, job->ids[job->next_hit++]);
	curl_easy_setopt(job->easy, CURLOPT_URL, url);
	curl_easy_setopt(job->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(job->easy, CURLOPT_POSTFIELDSIZE, (long)(sizeof(body) - 1));
	curl_easy_setopt(job->easy, CURLOPT_HTTPHEADER, c->post_headers);
	return curl_multi_add_handle(c->multi, job->easy) == CURLM_OK ? 0 : -1;
}

/* Record a finished request and start the job's next one. Returns 1 when the job is idle. */
static int advance(struct campaign *c, struct job *job, CURLcode result)
{
	long status = 0;

	curl_multi_remove_handle(c->multi, job->easy);
	if (job->is_search && (result == CURLE_HTTP2 || result == CURLE_HTTP2_STREAM) &&
	    job->attempts < MAX_ATTEMPTS) {
		job->attempts++;
		job->response_len = 0;
		c->retries++;
		return curl_multi_add_handle(c->multi, job->easy) == CURLM_OK ? 0 : 1;
	}
	curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &status);
	c->requests++;
	if (result != CURLE_OK) {
		c->failures++;
		if (c->failures <= 5)
			fprintf(stderr, "graph_sim_load: request failed: %s\n", curl_easy_strerror(result));
	} else if (status >= 0 && status < STATUS_MAX) {
		c->statuses[status]++;
	}

	if (job->is_search && result == CURLE_OK && status == 200) {
		job->hit_count = parse_ids(job);
		job->next_hit = 0;
	} else if (job->is_search) {
		job->hit_count = 0;
		job->next_hit = 0;
	}
	if (job->next_hit < job->hit_count)
		return start_move(c, job) == 0 ? 0 : 1;
	if (c->next_mailbox < c->opt.mailboxes)
		return start_search(c, job) == 0 ? 0 : 1;
	return 1;
}

/* POST the client-credentials form and put the access token into token. */
static int fetch_token(struct campaign *c, char *token, size_t token_size)
{
	struct job *job = calloc(1, sizeof(*job));
	char url[URL_MAX], form[1024];
	CURLcode rc;
	const char *start, *end;
	int result = -1;

	if (!job)
		return -1;
	job->easy = curl_easy_init();
	snprintf(url, sizeof(url), "https://%s:%ld/%s/oauth2/v2.0/token", c->opt.host, c->opt.port, c->opt.tenant);
	snprintf(form, sizeof(form), "grant_type=client_credentials&client_id=%s&client_secret=%s"
		 "&scope=https%%3A%%2F%%2Fgraph.microsoft.com%%2F.default", c->opt.client_id, c->opt.client_secret);
	set_common(c, job->easy, job);
	curl_easy_setopt(job->easy, CURLOPT_URL, url);
	curl_easy_setopt(job->easy, CURLOPT_POSTFIELDS, form);
	rc = curl_easy_perform(job->easy);
	start = strstr(job->response, "\"access_token\":\"");
	if (rc != CURLE_OK || !start) {
		fprintf(stderr, "graph_sim_load: token request failed: %s %s\n", curl_easy_strerror(rc), job->response);
	} else {
		start += 16;
		end = strchr(start, '"');
		if (end && (size_t)(end - start) < token_size) {
			memcpy(token, start, (size_t)(end - start));
			token[end - start] = '\0';
			result = 0;
		}
	}
	curl_easy_cleanup(job->easy);
	free(job);
	return result;
}

/* curl's socket callback: mirror the sockets curl wants watched into the epoll set. */
static int watch_socket(CURL *easy, curl_socket_t fd, int what, void *user, void *socket_data)
{
	struct campaign *c = user;
	struct epoll_event ev = { 0 };

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(c->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
		curl_multi_assign(c->multi, fd, NULL);
		return 0;
	}
	ev.data.fd = fd;
	ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
	if (socket_data) {
		epoll_ctl(c->epoll_fd, EPOLL_CTL_MOD, fd, &ev);
	} else {
		epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
		curl_multi_assign(c->multi, fd, c);
	}
	return 0;
}

/* curl's timer callback: remember when to call curl_multi_socket_action with the timeout. */
static int set_timer(CURLM *multi, long timeout_ms, void *user)
{
	struct campaign *c = user;

	(void)multi;
	c->timer_deadline = timeout_ms < 0 ? -1.0 : now_seconds() + (double)timeout_ms / 1000.0;
	return 0;
}

/* Handle every finished transfer. Returns how many jobs became idle. */
static long reap(struct campaign *c)
{
	CURLMsg *msg;
	int queued = 0;
	long idle = 0;

	while ((msg = curl_multi_info_read(c->multi, &queued)) != NULL) {
		struct job *job = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&job);
		idle += advance(c, job, msg->data.result);
	}
	return idle;
}

static int run_campaign(struct campaign *c, struct job *jobs, long job_count)
{
	struct epoll_event events[EVENTS_PER_WAIT];
	long active = 0;
	int running = 0;

	for (long i = 0; i < job_count && c->next_mailbox < c->opt.mailboxes; i++) {
		if (start_search(c, &jobs[i]) == 0)
			active++;
	}
	while (active > 0) {
		int wait_ms = 1000, n;

		if (c->timer_deadline >= 0) {
			double left = c->timer_deadline - now_seconds();

			wait_ms = left <= 0 ? 0 : (int)(left * 1000.0) + 1;
		}
		n = epoll_wait(c->epoll_fd, events, EVENTS_PER_WAIT, wait_ms);
		for (int i = 0; i < n; i++) {
			int flags = 0;

			if (events[i].events & (EPOLLIN | EPOLLHUP))
				flags |= CURL_CSELECT_IN;
			if (events[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (events[i].events & EPOLLERR)
				flags |= CURL_CSELECT_ERR;
			curl_multi_socket_action(c->multi, events[i].data.fd, flags, &running);
		}
		if (c->timer_deadline >= 0 && now_seconds() >= c->timer_deadline) {
			c->timer_deadline = -1.0;
			curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
		}
		active -= reap(c);
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: graph_sim_load --port N --ca FILE [--host ADDR] [--tenant T] [--client-id ID]\n"
		"       [--client-secret S] [--domain D] [--mailboxes N] [--message-id ID]\n"
		"       [--concurrency N] [--connections N]\n");
	exit(2);
}

static void parse_options(int argc, char **argv, struct options *o)
{
	*o = (struct options){ .host = "127.0.0.1", .tenant = "tid-bench", .client_id = "bench-app",
		.client_secret = "bench-secret", .domain = "corp.example",
		.message_id = "<campaign+1=x/y@evil.example>", .mailboxes = 10000, .concurrency = 2000,
		.connections = 20 };
	for (int i = 1; i < argc; i++) {
		const char *name = argv[i];
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;

		if (!value)
			usage();
		i++;
		if (strcmp(name, "--host") == 0)
			o->host = value;
		else if (strcmp(name, "--port") == 0)
			o->port = strtol(value, NULL, 10);
		else if (strcmp(name, "--ca") == 0)
			o->ca = value;
		else if (strcmp(name, "--tenant") == 0)
			o->tenant = value;
		else if (strcmp(name, "--client-id") == 0)
			o->client_id = value;
		else if (strcmp(name, "--client-secret") == 0)
			o->client_secret = value;
		else if (strcmp(name, "--domain") == 0)
			o->domain = value;
		else if (strcmp(name, "--message-id") == 0)
			o->message_id = value;
		else if (strcmp(name, "--mailboxes") == 0)
			o->mailboxes = strtol(value, NULL, 10);
		else if (strcmp(name, "--concurrency") == 0)
			o->concurrency = strtol(value, NULL, 10);
		else if (strcmp(name, "--connections") == 0)
			o->connections = strtol(value, NULL, 10);
		else
			usage();
	}
	if (o->port <= 0 || o->port > 65535 || !o->ca || o->mailboxes < 0 || o->concurrency < 1 ||
	    o->connections < 1)
		usage();
}

int main(int argc, char **argv)
{
	struct campaign *c = calloc(1, sizeof(*c));
	struct job *jobs;
	char token[8192], header[8300];
	double started, seconds, cpu_start;
	char *escaped;
	int rc;

	if (!c)
		return 1;
	parse_options(argc, argv, &c->opt);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (fetch_token(c, token, sizeof(token)) != 0)
		return 1;

	escaped = curl_easy_escape(NULL, "internetMessageId eq '", 0);
	snprintf(c->filter, sizeof(c->filter), "%s", escaped);
	curl_free(escaped);
	escaped = curl_easy_escape(NULL, c->opt.message_id, 0);
	snprintf(c->filter + strlen(c->filter), sizeof(c->filter) - strlen(c->filter), "%s%%27", escaped);
	curl_free(escaped);

	snprintf(header, sizeof(header), "Authorization: Bearer %s", token);
	c->get_headers = curl_slist_append(NULL, header);
	c->get_headers = curl_slist_append(c->get_headers, "Prefer: IdType=\"ImmutableId\"");
	c->post_headers = curl_slist_append(NULL, header);
	c->post_headers = curl_slist_append(c->post_headers, "Prefer: IdType=\"ImmutableId\"");
	c->post_headers = curl_slist_append(c->post_headers, "Content-Type: application/json");

	c->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	c->timer_deadline = -1.0;
	c->multi = curl_multi_init();
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, watch_socket);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, set_timer);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, c->opt.connections);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, c->opt.connections);
	jobs = calloc((size_t)c->opt.concurrency, sizeof(*jobs));
	if (!jobs)
		return 1;
	for (long i = 0; i < c->opt.concurrency; i++) {
		jobs[i].easy = curl_easy_init();
		set_common(c, jobs[i].easy, &jobs[i]);
	}

	started = now_seconds();
	cpu_start = cpu_seconds();
	rc = run_campaign(c, jobs, c->opt.concurrency);
	seconds = now_seconds() - started;

	printf("requests=%ld seconds=%.3f requests_per_s=%.0f failures=%ld retries=%ld client_cpu_s=%.2f statuses=",
	       c->requests, seconds, (double)c->requests / seconds, c->failures, c->retries,
	       cpu_seconds() - cpu_start);
	for (int s = 0; s < STATUS_MAX; s++)
		if (c->statuses[s])
			printf("%d:%ld,", s, c->statuses[s]);
	printf("\n");

	for (long i = 0; i < c->opt.concurrency; i++)
		curl_easy_cleanup(jobs[i].easy);
	curl_multi_cleanup(c->multi);
	close(c->epoll_fd);
	curl_slist_free_all(c->get_headers);
	curl_slist_free_all(c->post_headers);
	curl_global_cleanup();
	rc = rc == 0 && c->failures == 0 ? 0 : 1;
	free(jobs);
	free(c);
	return rc;
}
