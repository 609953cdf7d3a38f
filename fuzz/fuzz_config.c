/*
 * fuzz_config.c: libFuzzer harness for the settings loader (cb_config_load_text).
 *
 * Loads arbitrary bytes as clawback.conf and frees the result, whatever
 * problems were found, so a half-filled struct cb_config is freed too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cb_config cfg;
	char *problems = NULL;
	struct cb_err err;

	cb_config_load_text("/etc/clawback/clawback.conf", (const char *)data, size, &cfg, &problems, &err);
	cb_config_free(&cfg);
	free(problems);
	return 0;
}
