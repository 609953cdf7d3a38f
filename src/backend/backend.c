/* backend.c: the backend registry and helpers shared by the backends. */
#include "backend/backend.h"

#include <stdlib.h>
#include <string.h>

extern const struct cb_backend_ops cb_backend_log;
extern const struct cb_backend_ops cb_backend_graph;

static const struct cb_backend_ops *const backends[] = {
	&cb_backend_log,
	&cb_backend_graph,
};

const struct cb_backend_ops *cb_backend_find(const char *name)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i]->name, name) == 0)
			return backends[i];
	return NULL;
}

void cb_http_request_clear(struct cb_http_request *req)
{
	free(req->url);
	curl_slist_free_all(req->headers);
	free(req->body);
	memset(req, 0, sizeof(*req));
}

const char *cb_result_name(enum cb_result result)
{
	switch (result) {
	case CB_RESULT_DONE:
		return "done";
	case CB_RESULT_NOT_FOUND:
		return "not_found";
	case CB_RESULT_TEMPORARY:
		return "temporary";
	case CB_RESULT_PERMANENT:
		return "permanent";
	}
	return "unknown";
}
