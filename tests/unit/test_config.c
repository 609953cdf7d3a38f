/* test_config.c: the settings file, its value checks and secret files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/log.h"
#include "config/config.h"
#include "config/config_values.h"
#include "config/ini_reader.h"
#include "testutil.h"

#define GRAPH_OK                                                                                                   \
	"[graph]\ntenant = contoso.onmicrosoft.com\nclient_id = 11111111-2222-3333-4444-555555555555\n"          \
	"client_secret_file = graph-secret\n"

static void load_valid(const char *text, struct cb_config *cfg)
{
	char *problems = NULL;
	struct cb_err err;
	int rc = cb_config_load_text("clawback.conf", text, strlen(text), cfg, &problems, &err);

	if (rc != 0)
		fail_msg("config rejected (rc %d): %s%s", rc, problems ? problems : "", rc < 0 ? err.msg : "");
	free(problems);
}

static char *load_invalid(const char *text, int *count)
{
	struct cb_config cfg;
	char *problems = NULL;
	struct cb_err err;
	int rc = cb_config_load_text("clawback.conf", text, strlen(text), &cfg, &problems, &err);

	cb_config_free(&cfg);
	assert_true(rc > 0);
	assert_non_null(problems);
	if (count)
		*count = rc;
	return problems;
}

static void config_defaults_without_keys(void **state)
{
	struct cb_config cfg;

	(void)state;
	load_valid("", &cfg);
	assert_string_equal(cfg.store_path, "/var/lib/clawback/clawback.db");
	assert_string_equal(cfg.rules_path, "/etc/clawback/rules.conf");
	assert_string_equal(cfg.backend, "log");
	assert_int_equal(cfg.dry_run, 0);
	assert_int_equal(cfg.log_level, CB_LOG_INFO);
	assert_int_equal(cfg.event_retention_ms, 90LL * 86400 * 1000);
	assert_int_equal(cfg.feed_count, 0);
	assert_int_equal(cfg.graph.enabled, 0);
	assert_int_equal(cfg.executor.mailbox_concurrency, 4);
	assert_int_equal(cfg.executor.mailbox_window_ms, 600000);
	assert_int_equal(cfg.executor.retry_max_ms, 480000);
	cb_config_free(&cfg);
}

static void config_full_file_values(void **state)
{
	struct cb_config cfg;

	(void)state;
	load_valid("[general]\nstore = /srv/cb.db\nrules = /srv/rules.conf\nbackend = graph\ndry_run = On\n"
		   "log_level = debug\nevent_retention_days = 30\naudit_retention_days = 3650\n\n"
		   "[feed \"main\"]\nurl = wss://events.retarus.com/email/siem/v1/websocket?channel=clawback-1\n"
		   "token_file = /etc/clawback/token\nproxy = http://proxy.example:3128\nproxy_user = svc\n"
		   "proxy_password_file = proxy-pw\nproxy_auth = ntlm\nping_interval_seconds = 60\n"
		   "pong_timeout_seconds = 5\n\n"
		   "[feed \"second\"]\nchannel = other-channel\ntoken_file = t2\n\n" GRAPH_OK
		   "cloud = usgov\nassertion_alg = RS256\ngraph_url = http://127.0.0.1:8443\n"
		   "authority_url = https://login.microsoftonline.us\ncanary_mailbox = canary@contoso.example\n"
		   "timeout_seconds = 12\n\n"
		   "[executor]\nmailbox_concurrency = 2\nmailbox_rate = 500\nmailbox_window_seconds = 60\n"
		   "server_concurrency = 20\nglobal_concurrency = 64\nmax_attempts = 7\nretry_base_seconds = 5\n"
		   "retry_max_seconds = 600\nnot_found_searches = 3\nnot_found_interval_seconds = 30\n"
		   "stop_timeout_seconds = 2\n",
		   &cfg);
	assert_string_equal(cfg.store_path, "/srv/cb.db");
	assert_string_equal(cfg.backend, "graph");
	assert_int_equal(cfg.dry_run, 1);
	assert_int_equal(cfg.log_level, CB_LOG_DEBUG);
	assert_int_equal(cfg.event_retention_ms, 30LL * 86400 * 1000);
	assert_int_equal(cfg.feed_count, 2);
	assert_string_equal(cfg.feeds[0].name, "main");
	assert_string_equal(cfg.feeds[0].url, "wss://events.retarus.com/email/siem/v1/websocket");
	assert_string_equal(cfg.feeds[0].channel, "clawback-1");
	assert_string_equal(cfg.feeds[0].proxy_auth, "ntlm");
	assert_int_equal(cfg.feeds[0].ping_interval_ms, 60000);
	assert_int_equal(cfg.feeds[0].pong_timeout_ms, 5000);
	assert_string_equal(cfg.feeds[1].url, CB_FEED_DEFAULT_URL);
	assert_string_equal(cfg.feeds[1].channel, "other-channel");
	assert_string_equal(cfg.feeds[1].token_file, "t2");
	assert_int_equal(cfg.graph.enabled, 1);
	assert_string_equal(cfg.graph.cloud, "usgov");
	assert_string_equal(cfg.graph.assertion_alg, "RS256");
	assert_string_equal(cfg.graph.graph_url, "http://127.0.0.1:8443");
	assert_int_equal(cfg.graph.timeout_ms, 12000);
	assert_int_equal(cfg.executor.mailbox_concurrency, 2);
	assert_int_equal(cfg.executor.mailbox_window_ms, 60000);
	assert_int_equal(cfg.executor.retry_base_ms, 5000);
	assert_int_equal(cfg.executor.not_found_interval_ms, 30000);
	assert_int_equal(cfg.executor.stop_timeout_ms, 2000);
	cb_config_free(&cfg);
}

struct bad_case {
	const char *label;
	const char *text;
	const char *expected;  /* a substring of the problems */
	const char *forbidden; /* must not appear (a secret), or NULL */
};

static const struct bad_case bad_cases[] = {
	{"unknown section", "[genral]\nstore = x\n", "clawback.conf:1: [genral]: unknown section", NULL},
	{"unknown key", "[general]\nstorage = /x\n", "clawback.conf:2: [general] storage: unknown key; valid keys are "
						      "store, rules, backend",
	 NULL},
	{"bad bool", "[general]\ndry_run = maybe\n",
	 "clawback.conf:2: [general] dry_run: invalid boolean 'maybe': use yes/no, true/false, on/off or 1/0", NULL},
	{"inline comment in bool", "[general]\ndry_run = yes # later\n", "invalid boolean 'yes # later'", NULL},
	{"retention too large", "[general]\nevent_retention_days = 5000\n",
	 "clawback.conf:2: [general] event_retention_days: invalid value '5000': use a whole number from 1 to 3650 days",
	 NULL},
	{"retention not a number", "[general]\naudit_retention_days = 10d\n", "invalid value '10d'", NULL},
	{"negative seconds", "[executor]\nretry_base_seconds = -1\n", "use a whole number from 1 to 86400 seconds",
	 NULL},
	{"concurrency above graph limit", "[executor]\nmailbox_concurrency = 5\n", "from 1 to 4", NULL},
	{"bad backend", "[general]\nbackend = imap\n",
	 "[general] backend: invalid value 'imap': use one of log, graph, ews", NULL},
	{"bad log level", "[general]\nlog_level = verbose\n", "invalid log level 'verbose'", NULL},
	{"duplicate key", "[general]\nstore = /a\nstore = /b\n",
	 "clawback.conf:3: [general] store: duplicate key (first set on line 2)", NULL},
	{"duplicate section", "[general]\n[general]\n", "clawback.conf:2: [general]: duplicate section (first on line 1)",
	 NULL},
	{"named general", "[general \"x\"]\n", "this section takes no name", NULL},
	{"inline token", "[feed \"f\"]\ntoken_file = t\ntoken = s3cr3t-value\n",
	 "clawback.conf:3: [feed \"f\"] token: secrets are not accepted in the config file (the value is not shown): "
	 "put the secret in a file readable only by clawback and set token_file = PATH",
	 "s3cr3t-value"},
	{"inline client secret", GRAPH_OK "client_secret = s3cr3t-value\n", "set client_secret_file = PATH",
	 "s3cr3t-value"},
	{"inline proxy password", "[feed \"f\"]\ntoken_file = t\nproxy_password = s3cr3t-value\n",
	 "set proxy_password_file = PATH", "s3cr3t-value"},
	{"bad channel short", "[feed \"f\"]\ntoken_file = t\nchannel = abc\n",
	 "clawback.conf:3: [feed \"f\"] channel: invalid channel 'abc': use 6 to 32 characters of a-z, 0-9 and '-'",
	 NULL},
	{"bad channel upper", "[feed \"f\"]\ntoken_file = t\nchannel = Default\n", "invalid channel 'Default'", NULL},
	{"bad channel in url", "[feed \"f\"]\ntoken_file = t\nurl = wss://e.example/ws?channel=a_b_c_d\n",
	 "invalid channel 'a_b_c_d'", NULL},
	{"channel twice", "[feed \"f\"]\ntoken_file = t\nurl = wss://e.example/ws?channel=one-channel\n"
			  "channel = two-channel\n",
	 "clawback.conf:4: [feed \"f\"] channel: the URL's ?channel= and the channel key both set the channel", NULL},
	{"ws to remote host", "[feed \"f\"]\ntoken_file = t\nurl = ws://events.retarus.com/ws\n",
	 "ws:// sends the token unencrypted", NULL},
	{"http scheme feed", "[feed \"f\"]\ntoken_file = t\nurl = https://events.retarus.com/ws\n",
	 "feed URL must start with wss://", NULL},
	{"token in url query", "[feed \"f\"]\ntoken_file = t\nurl = wss://e.example/ws?token=s3cr3t-value\n",
	 "unsupported query parameter 'token' in the feed URL (its value is not shown)", "s3cr3t-value"},
	{"token after channel", "[feed \"f\"]\ntoken_file = t\nurl = wss://e.example/ws?channel=abcdef&token=s3cr3t-value\n",
	 "unsupported query parameter 'token' in the feed URL (its value is not shown)", "s3cr3t-value"},
	{"password in url", "[feed \"f\"]\ntoken_file = t\nurl = wss://user:s3cr3t-value@e.example/ws\n",
	 "user name or password in the URL is not allowed", "s3cr3t-value"},
	{"password in proxy", "[feed \"f\"]\ntoken_file = t\nproxy = http://u:s3cr3t-value@proxy.example:3128\n",
	 "user name or password in the URL is not allowed", "s3cr3t-value"},
	{"bad proxy scheme", "[feed \"f\"]\ntoken_file = t\nproxy = ftp://proxy.example\n",
	 "proxy URL must start with http://", NULL},
	{"bad port", "[feed \"f\"]\ntoken_file = t\nurl = wss://e.example:99999/ws\n", "invalid port in URL", NULL},
	{"url fragment", "[feed \"f\"]\ntoken_file = t\nurl = wss://e.example/ws#x\n", "must not have a #fragment",
	 NULL},
	{"missing token file", "[feed \"f\"]\nchannel = abcdef\n",
	 "clawback.conf:1: [feed \"f\"] token_file: missing", NULL},
	{"bad feed name", "[feed \"Main Feed\"]\ntoken_file = t\n", "clawback.conf:1: [feed \"Main Feed\"]: feed name",
	 NULL},
	{"unnamed feed", "[feed]\ntoken_file = t\n", "clawback.conf:1: [feed \"\"]: feed name", NULL},
	{"duplicate feed", "[feed \"a\"]\ntoken_file = t\n[feed \"a\"]\ntoken_file = u\n",
	 "clawback.conf:3: [feed \"a\"]: duplicate feed (first defined on line 1)", NULL},
	{"same channel twice", "[feed \"a\"]\ntoken_file = t\n[feed \"b\"]\ntoken_file = t\n",
	 "clawback.conf:3: [feed \"b\"] channel: same URL, channel and token as feed 'a'", NULL},
	{"proxy user alone", "[feed \"f\"]\ntoken_file = t\nproxy = http://p.example:3128\nproxy_user = svc\n",
	 "clawback.conf:4: [feed \"f\"] proxy_password_file: missing: proxy_user needs proxy_password_file", NULL},
	{"proxy auth without proxy", "[feed \"f\"]\ntoken_file = t\nproxy_auth = basic\n",
	 "[feed \"f\"] proxy: missing", NULL},
	{"bad proxy auth", "[feed \"f\"]\ntoken_file = t\nproxy_auth = kerberos\n",
	 "invalid value 'kerberos': use one of basic, ntlm, any", NULL},
	{"ping too often", "[feed \"f\"]\ntoken_file = t\nping_interval_seconds = 1\n", "from 5 to 240 seconds", NULL},
	{"graph backend without tenant", "[general]\nbackend = graph\n[graph]\nclient_id = "
					 "11111111-2222-3333-4444-555555555555\nclient_secret_file = s\n",
	 "clawback.conf:3: [graph] tenant: missing", NULL},
	{"graph backend without section", "[general]\nbackend = graph\n", "clawback.conf:2: [graph] tenant: missing",
	 NULL},
	{"graph disabled but backend", "[general]\nbackend = graph\n" GRAPH_OK "enabled = no\n",
	 "[graph] enabled: backend = graph needs the [graph] section enabled", NULL},
	{"graph secret and certificate", "[general]\nbackend = graph\n" GRAPH_OK "certificate_file = /c.pem\n",
	 "set exactly one of client_secret_file or certificate_file", NULL},
	{"graph bad client id", GRAPH_OK "enabled = yes\nclient_id = app\n", "duplicate key", NULL},
	{"graph bad guid", "[graph]\nclient_id = 1111-2222\n", "invalid GUID '1111-2222'", NULL},
	{"graph bad tenant", "[graph]\ntenant = contoso\n", "invalid tenant 'contoso'", NULL},
	{"graph bad cloud", "[graph]\ncloud = germany\n", "use one of global, usgov, usgov-dod, china", NULL},
	{"graph plain http", "[graph]\ngraph_url = http://graph.microsoft.com\n",
	 "http:// sends credentials unencrypted", NULL},
	{"graph bad canary", "[graph]\ncanary_mailbox = nobody\n", "invalid mailbox address 'nobody'", NULL},
	{"key file without certificate", "[general]\nbackend = graph\n" GRAPH_OK "key_file = k.pem\n",
	 "key_file needs certificate_file", NULL},
	{"retry max below base", "[executor]\nretry_base_seconds = 600\nretry_max_seconds = 60\n",
	 "clawback.conf:3: [executor] retry_max_seconds: retry_max_seconds (60) is below retry_base_seconds (600)",
	 NULL},
	{"syntax error", "[general]\nstore\n", "clawback.conf:2: expected 'key = value'", NULL},
	{"NUL byte", "[general]\nstore = /a\n", NULL, NULL},
	{"key before section", "store = /x\n", "clawback.conf:1: key outside any section", NULL},
};

static void config_reject_garbage_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		char *problems;

		if (!c->expected)
			continue;
		problems = load_invalid(c->text, NULL);
		if (!strstr(problems, c->expected))
			fail_msg("case '%s': expected '%s' in:\n%s", c->label, c->expected, problems);
		if (c->forbidden && strstr(problems, c->forbidden))
			fail_msg("case '%s': the secret appears in:\n%s", c->label, problems);
		free(problems);
	}
}

static void config_nul_byte_rejected(void **state)
{
	static const char text[] = "[general]\nstore = /a\0b\n";
	struct cb_config cfg;
	char *problems = NULL;
	struct cb_err err;

	(void)state;
	assert_int_equal(cb_config_load_text("clawback.conf", text, sizeof(text) - 1, &cfg, &problems, &err), 1);
	assert_non_null(strstr(problems, "clawback.conf:2: NUL byte in line"));
	free(problems);
	cb_config_free(&cfg);
}

static void config_loopback_ws_accepted(void **state)
{
	static const char *const urls[] = {"ws://127.0.0.1:8765/ws", "ws://localhost/ws", "ws://[::1]:9000/x",
					   "wss://127.0.0.1:8443/email/siem/v1/websocket?channel=test-channel"};
	(void)state;
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		struct cb_config cfg;
		char text[512];

		snprintf(text, sizeof(text), "[feed \"f\"]\ntoken_file = t\nurl = %s\n", urls[i]);
		load_valid(text, &cfg);
		assert_int_equal(cfg.feed_count, 1);
		cb_config_free(&cfg);
	}
}

static void config_ws_lookalike_host_rejected(void **state)
{
	char *problems;

	(void)state;
	problems = load_invalid("[feed \"f\"]\ntoken_file = t\nurl = ws://127.0.0.1.evil.example/ws\n", NULL);
	assert_non_null(strstr(problems, "ws:// sends the token unencrypted"));
	free(problems);
}

static void config_problems_are_capped(void **state)
{
	struct cb_buf b;
	char *problems;
	int count = 0;

	(void)state;
	cb_buf_init(&b, 0);
	cb_buf_puts(&b, "[general]\n");
	for (int i = 0; i < CB_PROBLEMS_MAX_LISTED + 50; i++)
		cb_buf_printf(&b, "bogus%d = 1\n", i);
	problems = load_invalid(b.data, &count);
	assert_int_equal(count, CB_PROBLEMS_MAX_LISTED + 50);
	assert_non_null(strstr(problems, "(50 more problems not listed)"));
	free(problems);
	cb_buf_free(&b);
}

static void config_too_many_feeds(void **state)
{
	struct cb_buf b;
	char *problems;
	int count = 0;

	(void)state;
	cb_buf_init(&b, 0);
	for (int i = 0; i <= CB_CONFIG_MAX_FEEDS; i++)
		cb_buf_printf(&b, "[feed \"f%d\"]\nchannel = channel-%d\ntoken_file = t\n", i, i);
	problems = load_invalid(b.data, &count);
	assert_int_equal(count, 1);
	assert_non_null(strstr(problems, "too many feeds: at most 16"));
	free(problems);
	cb_buf_free(&b);
}

static void config_relative_paths_follow_file(void **state)
{
	struct cb_config cfg;
	char *problems = NULL;
	struct cb_err err;
	const char *text = "[general]\nstore = data/cb.db\nrules = /abs/rules.conf\n[feed \"f\"]\ntoken_file = tok\n"
			   "ca_file = ca.pem\n";

	(void)state;
	assert_int_equal(cb_config_load_text("/etc/clawback/clawback.conf", text, strlen(text), &cfg, &problems, &err),
			 0);
	assert_string_equal(cfg.store_path, "/etc/clawback/data/cb.db");
	assert_string_equal(cfg.rules_path, "/abs/rules.conf");
	assert_string_equal(cfg.feeds[0].ca_file, "/etc/clawback/ca.pem");
	/* Secret files stay relative: they resolve in $CREDENTIALS_DIRECTORY when read. */
	assert_string_equal(cfg.feeds[0].token_file, "tok");
	cb_config_free(&cfg);
}

static void config_load_missing_file(void **state)
{
	struct cb_config cfg;
	char *problems = NULL;
	struct cb_err err;

	(void)state;
	assert_int_equal(cb_config_load("/nonexistent/clawback.conf", &cfg, &problems, &err), -1);
	assert_null(problems);
	assert_non_null(strstr(err.msg, "/nonexistent/clawback.conf"));
	cb_config_free(&cfg);
}

static void config_example_file_valid(void **state)
{
	struct cb_config cfg;
	char *problems = NULL;
	struct cb_err err;
	int rc;

	(void)state;
	rc = cb_config_load(CLAWBACK_SOURCE_DIR "/etc/clawback.conf.example", &cfg, &problems, &err);
	if (rc != 0)
		fail_msg("rc %d: %s%s", rc, problems ? problems : "", rc < 0 ? err.msg : "");
	assert_int_equal(cfg.feed_count, 1);
	assert_string_equal(cfg.feeds[0].channel, "clawback-prod");
	assert_int_equal(cfg.graph.enabled, 1);
	cb_config_free(&cfg);
}

struct bool_case {
	const char *text;
	int result; /* 0, 1, or -1 for invalid */
};

static void config_bool_spellings(void **state)
{
	static const struct bool_case cases[] = {
		{"yes", 1}, {"YES", 1}, {"true", 1}, {"on", 1}, {"1", 1}, {"no", 0}, {"False", 0},
		{"off", 0}, {"0", 0},   {"", -1},    {"y", -1}, {"2", -1}, {"yes ", -1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int value = -1;
		int rc = cb_config_parse_bool(cases[i].text, &value);

		if (cases[i].result < 0) {
			assert_int_equal(rc, -1);
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(value, cases[i].result);
		}
	}
}

static void config_channel_limits(void **state)
{
	char msg[256];
	char max[CB_CHANNEL_MAX + 2];

	(void)state;
	assert_int_equal(cb_config_check_channel("default", msg, sizeof(msg)), 0);
	assert_int_equal(cb_config_check_channel("abcdef", msg, sizeof(msg)), 0);
	assert_int_equal(cb_config_check_channel("abcde", msg, sizeof(msg)), -1);
	memset(max, 'a', CB_CHANNEL_MAX);
	max[CB_CHANNEL_MAX] = '\0';
	assert_int_equal(cb_config_check_channel(max, msg, sizeof(msg)), 0);
	max[CB_CHANNEL_MAX] = 'a';
	max[CB_CHANNEL_MAX + 1] = '\0';
	assert_int_equal(cb_config_check_channel(max, msg, sizeof(msg)), -1);
	assert_int_equal(cb_config_check_channel("abc def", msg, sizeof(msg)), -1);
}

static void secret_read_strips_one_newline(void **state)
{
	const char *dir = test_tmpdir();
	char *path = test_write_file(dir, "token", "abc123\n\n");
	char *secret = NULL;
	size_t len = 0;
	struct cb_err err;

	(void)state;
	assert_int_equal(cb_secret_read(path, &secret, &len, &err), 0);
	assert_int_equal(len, 7);
	assert_string_equal(secret, "abc123\n");
	cb_secret_free(secret, len);

	assert_int_equal(cb_secret_read_raw(path, &secret, &len, &err), 0);
	assert_int_equal(len, 8);
	assert_memory_equal(secret, "abc123\n\n", 8);
	cb_secret_free(secret, len);
	free(path);

	path = test_write_file(dir, "crlf", "xyz\r\n");
	assert_int_equal(cb_secret_read(path, &secret, &len, &err), 0);
	assert_string_equal(secret, "xyz");
	assert_int_equal(len, 3);
	cb_secret_free(secret, len);
	free(path);
}

static void secret_read_credentials_directory(void **state)
{
	const char *dir = test_tmpdir();
	char *path = test_write_file(dir, "retarus-token", "tok-value");
	char *secret = NULL;
	size_t len = 0;
	struct cb_err err;

	(void)state;
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	assert_int_equal(cb_secret_read("retarus-token", &secret, &len, &err), 0);
	assert_string_equal(secret, "tok-value");
	cb_secret_free(secret, len);

	assert_int_equal(cb_secret_read("../etc/passwd", &secret, &len, &err), -1);
	assert_non_null(strstr(err.msg, "plain name"));
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_int_equal(cb_secret_read("retarus-token", &secret, &len, &err), -1);
	assert_non_null(strstr(err.msg, "needs $CREDENTIALS_DIRECTORY"));
	assert_null(secret);
	free(path);
}

static void secret_read_rejects_bad_files(void **state)
{
	const char *dir = test_tmpdir();
	char *empty = test_write_file(dir, "empty", "\n");
	char *big_path;
	char *secret = NULL;
	size_t len = 0;
	struct cb_err err;
	char *big = malloc(CB_SECRET_MAX_BYTES + 2);

	(void)state;
	assert_int_equal(cb_secret_read(empty, &secret, &len, &err), -1);
	assert_non_null(strstr(err.msg, "is empty"));
	assert_int_equal(cb_secret_read(dir, &secret, &len, &err), -1);
	assert_non_null(strstr(err.msg, "not a regular file"));
	assert_int_equal(cb_secret_read("/nonexistent/secret", &secret, &len, &err), -1);
	assert_non_null(strstr(err.msg, "/nonexistent/secret"));

	assert_non_null(big);
	memset(big, 's', CB_SECRET_MAX_BYTES + 1);
	big[CB_SECRET_MAX_BYTES + 1] = '\0';
	big_path = test_write_file(dir, "big", big);
	assert_int_equal(cb_secret_read(big_path, &secret, &len, &err), -1);
	assert_non_null(strstr(err.msg, "larger than"));
	assert_null(strstr(err.msg, "sss"));
	free(big);
	free(big_path);
	free(empty);
}

static void check_files_reports_loose_mode(void **state)
{
	const char *dir = test_tmpdir();
	char *tight = test_write_file(dir, "tight", "x");
	char *loose = test_write_file(dir, "loose", "x");
	struct cb_config cfg;
	char *problems = NULL;
	char text[1024];
	int count;

	(void)state;
	chmod(tight, 0600);
	chmod(loose, 0644);
	snprintf(text, sizeof(text), "[feed \"a\"]\ntoken_file = %s\n[feed \"b\"]\nchannel = second\n"
				     "token_file = %s\n[feed \"c\"]\nchannel = third-channel\ntoken_file = %s/missing\n",
		 tight, loose, dir);
	load_valid(text, &cfg);
	count = cb_config_check_files(&cfg, &problems);
	assert_int_equal(count, 2);
	assert_non_null(strstr(problems, "[feed \"b\"] token_file:"));
	assert_non_null(strstr(problems, "accessible by group or others (mode 0644)"));
	assert_non_null(strstr(problems, "[feed \"c\"] token_file: cannot open"));
	assert_null(strstr(problems, "[feed \"a\"]"));
	free(problems);
	cb_config_free(&cfg);
	free(tight);
	free(loose);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(config_defaults_without_keys),
		cmocka_unit_test(config_full_file_values),
		cmocka_unit_test(config_reject_garbage_rows),
		cmocka_unit_test(config_nul_byte_rejected),
		cmocka_unit_test(config_loopback_ws_accepted),
		cmocka_unit_test(config_ws_lookalike_host_rejected),
		cmocka_unit_test(config_problems_are_capped),
		cmocka_unit_test(config_too_many_feeds),
		cmocka_unit_test(config_relative_paths_follow_file),
		cmocka_unit_test(config_load_missing_file),
		cmocka_unit_test(config_example_file_valid),
		cmocka_unit_test(config_bool_spellings),
		cmocka_unit_test(config_channel_limits),
		cmocka_unit_test(secret_read_strips_one_newline),
		cmocka_unit_test(secret_read_credentials_directory),
		cmocka_unit_test(secret_read_rejects_bad_files),
		cmocka_unit_test(check_files_reports_loose_mode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
