/*
 * graph_assertion_probe.c: prints a Graph client assertion made by
 * cb_graph_make_assertion, for test_graph_jwt.py. Test-only program.
 * Usage: graph_assertion_probe CERT KEY|- ALG TENANT CLIENT_ID [PKCS12_PASSWORD_FILE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/graph/graph.h"

int main(int argc, char **argv)
{
	struct cb_graph_config cfg = {0};
	struct cb_err err;
	char *jws = NULL;

	if (argc < 6) {
		fprintf(stderr, "usage: %s CERT KEY|- ALG TENANT CLIENT_ID [PKCS12_PASSWORD_FILE]\n", argv[0]);
		return 2;
	}
	cfg.cloud = "global";
	cfg.certificate_file = argv[1];
	cfg.key_file = strcmp(argv[2], "-") == 0 ? NULL : argv[2];
	cfg.assertion_alg = argv[3];
	cfg.tenant = argv[4];
	cfg.client_id = argv[5];
	cfg.pkcs12_password_file = argc > 6 ? argv[6] : NULL;
	if (cb_graph_make_assertion(&cfg, &jws, &err) < 0) {
		fprintf(stderr, "assertion failed: %s\n", err.msg);
		return 1;
	}
	printf("%s\n", jws);
	free(jws);
	return 0;
}
