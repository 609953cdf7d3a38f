/*
 * graph.h: entry points of the Microsoft Graph backend for the command line.
 *
 * The backend itself is reached through cb_backend_find("graph") (backend.h).
 * These functions serve `clawback doctor` and a hidden command that prints a
 * client assertion for tests. Both run in the calling thread and use
 * blocking curl requests.
 */
#ifndef CLAWBACK_BACKEND_GRAPH_GRAPH_H
#define CLAWBACK_BACKEND_GRAPH_GRAPH_H

#include <stdio.h>

#include "base/err.h"
#include "config/config.h"

/*
 * Builds a signed client assertion (a compact JWS) for the configured
 * certificate: PS256 with x5t#S256 by default, RS256 with x5t when
 * assertion_alg is "RS256". The caller frees *out.
 */
int cb_graph_make_assertion(const struct cb_graph_config *cfg, char **out, struct cb_err *err);

/*
 * Checks the Graph setup with blocking requests and prints one line per
 * check to out ("ok ..." or "FAILED ...: what to fix"): the configuration,
 * a token, the canary mailbox's Inbox, and the Junk Email folder.
 * Returns 0 when every check passed, -1 otherwise.
 */
int cb_graph_doctor(const struct cb_config *cfg, FILE *out);

/*
 * Checks that a destination folder (well-known name or path) is reachable in
 * the canary mailbox, without creating anything. A missing path segment is
 * reported as "would be created". Prints one line; returns 0 or -1.
 */
int cb_graph_doctor_folder(const struct cb_config *cfg, const char *folder, FILE *out);

#endif
