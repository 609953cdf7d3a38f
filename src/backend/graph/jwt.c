/*
 * jwt.c: the client assertion (RFC 7523 JWT) that proves the application's
 * certificate to Entra ID, signed with OpenSSL 3 EVP.
 *
 * Runs in the thread that requests a token. Inputs are the operator's key
 * and certificate files (trusted, but parsed defensively and bounded by
 * CB_SECRET_MAX_BYTES). Key material is wiped after use and never logged.
 * PKCS#12 files encrypted with RC2 or 3DES (made by older Windows tools) need
 * OpenSSL's "legacy" provider: it is loaded into a private OSSL_LIB_CTX only
 * when the default one fails, so the rest of the process does not use it.
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backend/graph/graph.h"
#include "backend/graph/graph_internal.h"
#include "base/util.h"

int graph_b64url(struct cb_buf *out, const unsigned char *data, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i;

	for (i = 0; i + 3 <= len; i += 3) {
		unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8 | data[i + 2];
		char quad[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63],
				alphabet[v & 63]};

		if (cb_buf_append(out, quad, 4))
			return -1;
	}
	if (len - i == 1) {
		unsigned v = (unsigned)data[i] << 16;
		char pair[2] = {alphabet[v >> 18], alphabet[(v >> 12) & 63]};

		return cb_buf_append(out, pair, 2);
	}
	if (len - i == 2) {
		unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8;
		char triple[3] = {alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63]};

		return cb_buf_append(out, triple, 3);
	}
	return 0;
}

void graph_uuid(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1) {
		/* NOTE: only reached when OpenSSL's DRBG fails; the ids stay unique enough for tracing. */
		uint64_t t = (uint64_t)cb_mono_ms() ^ ((uint64_t)cb_now_ms() << 20);

		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)(t >> ((i % 8) * 8)) ^ (unsigned char)(i * 37);
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

void graph_key_free(struct graph_key *key)
{
	EVP_PKEY_free(key->pkey);
	X509_free(key->cert);
	for (size_t i = 0; i < 2; i++)
		if (key->providers[i])
			OSSL_PROVIDER_unload(key->providers[i]);
	OSSL_LIB_CTX_free(key->libctx);
	memset(key, 0, sizeof(*key));
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* Resolves a relative secret path in $CREDENTIALS_DIRECTORY, as cb_secret_read does. */
static void resolve_path(const char *path, char *out, size_t size)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");

	if (path[0] != '/' && dir && *dir)
		snprintf(out, size, "%s/%s", dir, path);
	else
		snprintf(out, size, "%s", path);
}

/*
 * Reads a binary file of at most CB_SECRET_MAX_BYTES. PKCS#12 is DER, so it
 * is not read with cb_secret_read, which removes a trailing newline byte.
 */
static int read_binary(const char *path, unsigned char **data, size_t *len, struct cb_err *err)
{
	char full[4096];
	FILE *f;
	unsigned char *buf;
	size_t n;

	resolve_path(path, full, sizeof(full));
	f = fopen(full, "rb");
	if (!f)
		return cb_err_set(err, "cannot open %s: %s", full, strerror(errno));
	buf = malloc(CB_SECRET_MAX_BYTES + 1);
	if (!buf) {
		fclose(f);
		return cb_err_set(err, "out of memory");
	}
	n = fread(buf, 1, CB_SECRET_MAX_BYTES + 1, f);
	fclose(f);
	if (n == 0 || n > CB_SECRET_MAX_BYTES) {
		OPENSSL_cleanse(buf, CB_SECRET_MAX_BYTES + 1);
		free(buf);
		return cb_err_set(err, "%s is empty or larger than %d bytes", full, CB_SECRET_MAX_BYTES);
	}
	*data = buf;
	*len = n;
	return 0;
}

static const char *openssl_reason(void)
{
	unsigned long code = ERR_peek_last_error();
	const char *reason = code ? ERR_reason_error_string(code) : NULL;

	return reason ? reason : "unknown OpenSSL error";
}

static int pkcs12_parse_in(OSSL_LIB_CTX *libctx, const unsigned char *der, size_t len,
			   const char *password, struct graph_key *key)
{
	OSSL_LIB_CTX *previous = libctx ? OSSL_LIB_CTX_set0_default(libctx) : NULL;
	const unsigned char *p = der;
	PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
	int ok = p12 && PKCS12_parse(p12, password, &key->pkey, &key->cert, NULL) == 1;

	PKCS12_free(p12);
	if (libctx)
		OSSL_LIB_CTX_set0_default(previous);
	return ok ? 0 : -1;
}

/* Loads a PKCS#12 bundle, retrying in a private context with the legacy provider. */
static int load_pkcs12(const struct cb_graph_config *cfg, struct graph_key *key, struct cb_err *err)
{
	unsigned char *der = NULL;
	size_t der_len = 0, pw_len = 0;
	char *password = NULL;
	int rc = -1;

	if (read_binary(cfg->certificate_file, &der, &der_len, err) < 0)
		return -1;
	if (cfg->pkcs12_password_file && cb_secret_read(cfg->pkcs12_password_file, &password, &pw_len, err) < 0)
		goto out;

	if (pkcs12_parse_in(NULL, der, der_len, password ? password : "", key) == 0) {
		rc = 0;
		goto out;
	}
	ERR_clear_error();
	key->libctx = OSSL_LIB_CTX_new();
	if (key->libctx) {
		key->providers[0] = OSSL_PROVIDER_load(key->libctx, "legacy");
		key->providers[1] = OSSL_PROVIDER_load(key->libctx, "default");
	}
	if (!key->libctx || !key->providers[0] || !key->providers[1]) {
		cb_err_set(err, "cannot read %s: the PKCS#12 file may use legacy encryption and OpenSSL's legacy provider is not available (%s)",
			   cfg->certificate_file, openssl_reason());
		goto out;
	}
	if (pkcs12_parse_in(key->libctx, der, der_len, password ? password : "", key) == 0) {
		rc = 0;
		goto out;
	}
	cb_err_set(err, "cannot read PKCS#12 file %s: %s (check graph.pkcs12_password_file)",
		   cfg->certificate_file, openssl_reason());
out:
	ERR_clear_error();
	OPENSSL_cleanse(der, der_len);
	free(der);
	if (password)
		cb_secret_free(password, pw_len);
	return rc;
}

/* Refuses to prompt on a terminal for the passphrase of an encrypted PEM key. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static int load_pem(const struct cb_graph_config *cfg, struct graph_key *key, struct cb_err *err)
{
	char *pem = NULL;
	size_t pem_len = 0;
	BIO *bio;
	FILE *f;

	if (!cfg->key_file)
		return cb_err_set(err, "graph.key_file is missing: a PEM certificate needs its private key (or use a .pfx/.p12 bundle)");
	if (cb_secret_read(cfg->key_file, &pem, &pem_len, err) < 0)
		return -1;
	bio = BIO_new_mem_buf(pem, (int)pem_len);
	key->pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
	BIO_free(bio);
	cb_secret_free(pem, pem_len);
	if (!key->pkey) {
		ERR_clear_error();
		return cb_err_set(err, "cannot read the private key in %s: it must be an unencrypted PEM key",
				  cfg->key_file);
	}

	f = fopen(cfg->certificate_file, "r");
	if (!f)
		return cb_err_set(err, "cannot open %s: %s", cfg->certificate_file, strerror(errno));
	key->cert = PEM_read_X509(f, NULL, no_passphrase, NULL);
	fclose(f);
	if (!key->cert) {
		ERR_clear_error();
		return cb_err_set(err, "cannot read a PEM certificate in %s", cfg->certificate_file);
	}
	return 0;
}

int graph_key_load(const struct cb_graph_config *cfg, struct graph_key *key, struct cb_err *err)
{
	int rc;

	memset(key, 0, sizeof(*key));
	if (!cfg->certificate_file)
		return cb_err_set(err, "graph.certificate_file is missing");
	if (ends_with(cfg->certificate_file, ".pfx") || ends_with(cfg->certificate_file, ".p12"))
		rc = load_pkcs12(cfg, key, err);
	else
		rc = load_pem(cfg, key, err);
	if (rc == 0 && (!key->pkey || !key->cert))
		rc = cb_err_set(err, "%s holds no private key and certificate pair", cfg->certificate_file);
	if (rc == 0 && !EVP_PKEY_is_a(key->pkey, "RSA"))
		rc = cb_err_set(err, "the private key for %s is not an RSA key (PS256 and RS256 need RSA)",
				cfg->certificate_file);
	if (rc == 0 && X509_check_private_key(key->cert, key->pkey) != 1)
		rc = cb_err_set(err, "the private key does not belong to the certificate in %s",
				cfg->certificate_file);
	if (rc < 0) {
		ERR_clear_error();
		graph_key_free(key);
	}
	return rc;
}

/* Builds base64url(header) "." base64url(claims) into out. */
static int signing_input(const struct graph_key *key, int pss, const char *client_id,
			 const char *aud, int64_t now_s, struct cb_buf *out, struct cb_err *err)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	struct cb_buf thumb;
	char jti[37], *header = NULL, *claims = NULL;
	json_t *h, *c;
	int rc = -1;

	cb_buf_init(&thumb, 0);
	if (X509_digest(key->cert, pss ? EVP_sha256() : EVP_sha1(), digest, &digest_len) != 1 ||
	    graph_b64url(&thumb, digest, digest_len) < 0) {
		cb_buf_free(&thumb);
		return cb_err_set(err, "cannot compute the certificate thumbprint");
	}
	graph_uuid(jti);
	h = json_pack("{s:s, s:s, s:s}", "alg", pss ? "PS256" : "RS256", "typ", "JWT",
		      pss ? "x5t#S256" : "x5t", thumb.data);
	c = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "aud", aud, "iss", client_id, "sub",
		      client_id, "jti", jti, "nbf", (json_int_t)now_s, "iat", (json_int_t)now_s, "exp",
		      (json_int_t)(now_s + CB_GRAPH_ASSERTION_LIFETIME_S));
	if (h && c) {
		header = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
		claims = json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER);
	}
	if (header && claims && graph_b64url(out, (unsigned char *)header, strlen(header)) == 0 &&
	    cb_buf_puts(out, ".") == 0 &&
	    graph_b64url(out, (unsigned char *)claims, strlen(claims)) == 0)
		rc = 0;
	else
		cb_err_set(err, "cannot build the assertion (out of memory or invalid client_id)");
	free(header);
	free(claims);
	json_decref(h);
	json_decref(c);
	cb_buf_free(&thumb);
	return rc;
}

static int sign(const struct graph_key *key, int pss, const struct cb_buf *input,
		struct cb_buf *out, struct cb_err *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	int rc = -1;

	if (!md || EVP_DigestSignInit_ex(md, &pctx, "SHA256", key->libctx, NULL, key->pkey, NULL) != 1)
		goto out;
	/* PS256 (RFC 7518): RSASSA-PSS with SHA-256, MGF1 SHA-256 and a 32-byte salt. */
	if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		goto out;
	if (EVP_DigestSign(md, NULL, &sig_len, (const unsigned char *)input->data, input->len) != 1)
		goto out;
	sig = malloc(sig_len);
	if (!sig || EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)input->data, input->len) != 1)
		goto out;
	if (graph_b64url(out, sig, sig_len) == 0)
		rc = 0;
out:
	if (rc < 0)
		cb_err_set(err, "cannot sign the client assertion: %s", openssl_reason());
	ERR_clear_error();
	free(sig);
	EVP_MD_CTX_free(md);
	return rc;
}

int graph_jwt_sign(const struct graph_key *key, const char *alg, const char *client_id,
		   const char *aud, int64_t now_s, char **out, struct cb_err *err)
{
	struct cb_buf jws, signature;
	int pss, rc = -1;

	if (!alg || strcmp(alg, "PS256") == 0)
		pss = 1;
	else if (strcmp(alg, "RS256") == 0)
		pss = 0;
	else
		return cb_err_set(err, "graph.assertion_alg \"%s\" is unknown: use PS256 or RS256", alg);
	if (!client_id || !*client_id)
		return cb_err_set(err, "graph.client_id is missing");

	cb_buf_init(&jws, 0);
	cb_buf_init(&signature, 0);
	if (signing_input(key, pss, client_id, aud, now_s, &jws, err) < 0 ||
	    sign(key, pss, &jws, &signature, err) < 0)
		goto out;
	if (cb_buf_puts(&jws, ".") < 0 || cb_buf_append(&jws, signature.data, signature.len) < 0) {
		cb_err_set(err, "out of memory");
		goto out;
	}
	*out = cb_buf_steal(&jws);
	rc = *out ? 0 : cb_err_set(err, "out of memory");
out:
	cb_buf_free(&signature);
	cb_buf_free(&jws);
	return rc;
}

int cb_graph_make_assertion(const struct cb_graph_config *cfg, char **out, struct cb_err *err)
{
	struct graph_endpoints ep;
	struct graph_key key;
	int rc;

	if (graph_endpoints_resolve(cfg, &ep, err) < 0)
		return -1;
	if (graph_key_load(cfg, &key, err) < 0)
		return -1;
	rc = graph_jwt_sign(&key, cfg->assertion_alg, cfg->client_id, ep.token_url, cb_now_ms() / 1000,
			    out, err);
	graph_key_free(&key);
	return rc;
}
