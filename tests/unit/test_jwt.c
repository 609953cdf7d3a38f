/*
 * test_jwt.c: the client assertion: header, claims and a signature checked
 * with OpenSSL, from PEM files, a modern PKCS#12 file and a legacy (RC2 and
 * 3DES) PKCS#12 file. Keys and certificates are made by the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/graph/graph.h"
#include "backend/graph/graph_internal.h"
#include "base/util.h"
#include "testutil.h"

static EVP_PKEY *test_key;
static X509 *test_cert;
static char dir[256];

static X509 *make_cert(EVP_PKEY *key)
{
	X509 *cert = X509_new();
	X509_NAME *name = X509_NAME_new();

	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"clawback test", -1, -1, 0);
	X509_set_subject_name(cert, name);
	X509_set_issuer_name(cert, name);
	X509_set_pubkey(cert, key);
	X509_sign(cert, key, EVP_sha256());
	X509_NAME_free(name);
	return cert;
}

static char *path_in_dir(const char *name)
{
	char *path = malloc(512);

	snprintf(path, 512, "%s/%s", dir, name);
	return path;
}

static void write_pkcs12(const char *name, OSSL_LIB_CTX *libctx, int key_nid, int cert_nid)
{
	char *path = path_in_dir(name);
	PKCS12 *p12 = PKCS12_create_ex("pw", "app", test_key, test_cert, NULL, key_nid, cert_nid,
				       0, 0, 0, libctx, NULL);
	FILE *f = fopen(path, "wb");

	assert_non_null(p12);
	assert_non_null(f);
	assert_int_equal(i2d_PKCS12_fp(f, p12), 1);
	fclose(f);
	PKCS12_free(p12);
	free(path);
}

static int setup(void **state)
{
	FILE *f;
	char *path;
	OSSL_LIB_CTX *legacy = OSSL_LIB_CTX_new();

	(void)state;
	snprintf(dir, sizeof(dir), "%s", test_tmpdir());
	test_key = EVP_RSA_gen(2048);
	test_cert = make_cert(test_key);

	path = path_in_dir("app.key");
	f = fopen(path, "w");
	PEM_write_PrivateKey(f, test_key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	chmod(path, 0600);
	free(path);
	path = path_in_dir("app.crt");
	f = fopen(path, "w");
	PEM_write_X509(f, test_cert);
	fclose(f);
	free(path);
	free(test_write_file(dir, "pw", "pw\n"));

	write_pkcs12("modern.pfx", NULL, NID_aes_256_cbc, NID_aes_256_cbc);
	OSSL_PROVIDER *providers[2] = {OSSL_PROVIDER_load(legacy, "legacy"),
				       OSSL_PROVIDER_load(legacy, "default")};
	write_pkcs12("legacy.p12", legacy, NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
		     NID_pbe_WithSHA1And40BitRC2_CBC);
	OSSL_PROVIDER_unload(providers[0]);
	OSSL_PROVIDER_unload(providers[1]);
	OSSL_LIB_CTX_free(legacy);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(test_key);
	X509_free(test_cert);
	return 0;
}

static unsigned char *b64url_decode(const char *in, size_t n, size_t *out_len)
{
	char *std = calloc(1, n + 4);
	unsigned char *out = malloc(n + 4);
	size_t m = 0;
	int len;

	for (size_t i = 0; i < n; i++)
		std[m++] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	while (m % 4)
		std[m++] = '=';
	len = EVP_DecodeBlock(out, (unsigned char *)std, (int)m);
	assert_true(len >= 0);
	*out_len = (size_t)len - (n % 4 == 2 ? 2 : n % 4 == 3 ? 1 : 0);
	free(std);
	return out;
}

static json_t *decode_part(const char *part, size_t n)
{
	size_t len;
	unsigned char *raw = b64url_decode(part, n, &len);
	json_t *j = json_loadb((char *)raw, len, 0, NULL);

	free(raw);
	assert_non_null(j);
	return j;
}

static void expect_thumbprint(json_t *header, const char *name, const EVP_MD *md)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	struct cb_buf b;

	X509_digest(test_cert, md, digest, &n);
	cb_buf_init(&b, 0);
	graph_b64url(&b, digest, n);
	assert_string_equal(json_string_value(json_object_get(header, name)), b.data);
	cb_buf_free(&b);
}

/* Checks header, claims and signature of an assertion made for alg. */
static void verify_assertion(const char *jws, const char *alg)
{
	const char *dot1 = strchr(jws, '.');
	const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	json_t *header, *claims;
	unsigned char *sig;
	size_t sig_len;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int pss = strcmp(alg, "PS256") == 0;
	int64_t now = cb_now_ms() / 1000;

	assert_non_null(dot2);
	assert_null(strchr(jws, '='));
	header = decode_part(jws, (size_t)(dot1 - jws));
	claims = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	assert_string_equal(json_string_value(json_object_get(header, "alg")), alg);
	assert_string_equal(json_string_value(json_object_get(header, "typ")), "JWT");
	if (pss) {
		expect_thumbprint(header, "x5t#S256", EVP_sha256());
		assert_null(json_object_get(header, "x5t"));
	} else {
		expect_thumbprint(header, "x5t", EVP_sha1());
	}
	assert_string_equal(json_string_value(json_object_get(claims, "aud")),
			    "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token");
	assert_string_equal(json_string_value(json_object_get(claims, "iss")), "app-id");
	assert_string_equal(json_string_value(json_object_get(claims, "sub")), "app-id");
	assert_int_equal(strlen(json_string_value(json_object_get(claims, "jti"))), 36);
	assert_true(json_integer_value(json_object_get(claims, "nbf")) <= now);
	assert_true(json_integer_value(json_object_get(claims, "iat")) <= now);
	assert_int_equal(json_integer_value(json_object_get(claims, "exp")) -
				 json_integer_value(json_object_get(claims, "nbf")),
			 CB_GRAPH_ASSERTION_LIFETIME_S);

	sig = b64url_decode(dot2 + 1, strlen(dot2 + 1), &sig_len);
	assert_int_equal(EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, test_key), 1);
	if (pss) {
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32);
	}
	assert_int_equal(EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)jws, (size_t)(dot2 - jws)), 1);

	EVP_MD_CTX_free(md);
	free(sig);
	json_decref(header);
	json_decref(claims);
}

static void config_for(struct cb_graph_config *cfg, const char *cert, const char *key, const char *alg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->cloud = "global";
	cfg->tenant = "contoso.example";
	cfg->client_id = "app-id";
	cfg->certificate_file = path_in_dir(cert);
	cfg->key_file = key ? path_in_dir(key) : NULL;
	cfg->pkcs12_password_file = path_in_dir("pw");
	cfg->assertion_alg = (char *)alg;
}

static void config_release(struct cb_graph_config *cfg)
{
	free(cfg->certificate_file);
	free(cfg->key_file);
	free(cfg->pkcs12_password_file);
}

static void check_made(const char *cert, const char *key, const char *alg)
{
	struct cb_graph_config cfg;
	struct cb_err err;
	char *jws = NULL;

	config_for(&cfg, cert, key, alg);
	if (cb_graph_make_assertion(&cfg, &jws, &err) < 0)
		fail_msg("%s: %s", cert, err.msg);
	verify_assertion(jws, alg ? alg : "PS256");
	free(jws);
	config_release(&cfg);
}

static void jwt_pem_ps256_default(void **state)
{
	(void)state;
	check_made("app.crt", "app.key", NULL);
}

static void jwt_pem_rs256(void **state)
{
	(void)state;
	check_made("app.crt", "app.key", "RS256");
}

static void jwt_pkcs12_modern(void **state)
{
	(void)state;
	check_made("modern.pfx", NULL, "PS256");
}

static void jwt_pkcs12_legacy(void **state)
{
	(void)state;
	check_made("legacy.p12", NULL, "RS256");
}

static void jwt_wrong_password_fails(void **state)
{
	struct cb_graph_config cfg;
	struct cb_err err;
	char *jws = NULL;

	(void)state;
	config_for(&cfg, "legacy.p12", NULL, NULL);
	free(cfg.pkcs12_password_file);
	cfg.pkcs12_password_file = test_write_file(dir, "wrong", "wrong");
	assert_int_equal(cb_graph_make_assertion(&cfg, &jws, &err), -1);
	assert_non_null(strstr(err.msg, "pkcs12_password_file"));
	assert_null(strstr(err.msg, "wrong"));
	config_release(&cfg);
}

static void jwt_bad_inputs_fail(void **state)
{
	struct cb_graph_config cfg;
	struct cb_err err;
	char *jws = NULL;
	char *garbage = test_write_file(dir, "garbage.pfx", "not a pkcs12 file");

	(void)state;
	config_for(&cfg, "app.crt", "app.key", "HS256");
	assert_int_equal(cb_graph_make_assertion(&cfg, &jws, &err), -1);
	assert_non_null(strstr(err.msg, "HS256"));
	config_release(&cfg);

	config_for(&cfg, "app.crt", NULL, NULL);
	assert_int_equal(cb_graph_make_assertion(&cfg, &jws, &err), -1);
	assert_non_null(strstr(err.msg, "key_file"));
	config_release(&cfg);

	config_for(&cfg, "garbage.pfx", NULL, NULL);
	assert_int_equal(cb_graph_make_assertion(&cfg, &jws, &err), -1);
	config_release(&cfg);
	free(garbage);
}

static void b64url_vectors(void **state)
{
	static const struct {
		const char *in;
		const char *out;
	} rows[] = {{"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"\xfb\xff", "-_8"}};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct cb_buf b;

		cb_buf_init(&b, 0);
		assert_int_equal(graph_b64url(&b, (const unsigned char *)rows[i].in, strlen(rows[i].in)), 0);
		assert_string_equal(b.data ? b.data : "", rows[i].out);
		cb_buf_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(b64url_vectors),
		cmocka_unit_test(jwt_pem_ps256_default),
		cmocka_unit_test(jwt_pem_rs256),
		cmocka_unit_test(jwt_pkcs12_modern),
		cmocka_unit_test(jwt_pkcs12_legacy),
		cmocka_unit_test(jwt_wrong_password_fails),
		cmocka_unit_test(jwt_bad_inputs_fail),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
