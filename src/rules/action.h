/*
 * action.h: what a rule decides to do with a delivered mail.
 *
 * Shared by the rules engine (which decides), the store (which records the
 * decision on the job) and the backends (which carry it out).
 */
#ifndef CLAWBACK_RULES_ACTION_H
#define CLAWBACK_RULES_ACTION_H

/* Longest folder path accepted in a rule ("Quarantine/PZD/2026"). */
#define CB_FOLDER_MAX 255

enum cb_action_kind {
	CB_ACTION_SKIP = 0,    /* do nothing: the job ends as skipped */
	CB_ACTION_LOG,         /* log only: search, record where the mail is, touch nothing */
	CB_ACTION_MOVE,        /* move to a well-known folder name or a folder path */
	CB_ACTION_SOFT_DELETE, /* delete to Recoverable Items (recoverable by the user's admin) */
	CB_ACTION_HARD_DELETE, /* delete permanently (purge) */
};

/* Notification targets, a bit set. */
enum cb_notify {
	CB_NOTIFY_ADMIN = 1u << 0,
	CB_NOTIFY_RECIPIENT = 1u << 1,
};

struct cb_action {
	enum cb_action_kind kind;
	char folder[CB_FOLDER_MAX + 1]; /* CB_ACTION_MOVE only: "junkemail" or "Quarantine/PZD" */
	int dry_run;                    /* 1: search and log what would be done, change nothing */
	unsigned notify;                /* enum cb_notify bits */
};

/* Stable names used in rule files, the store and the API: "skip", "log", "move", ... */
const char *cb_action_kind_name(enum cb_action_kind kind);
/* Parses a name of cb_action_kind_name; returns -1 when unknown. */
int cb_action_kind_parse(const char *name, enum cb_action_kind *out);

#endif
