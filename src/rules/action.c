/* action.c: names of rule actions. */
#include "rules/action.h"

#include <string.h>

static const char *const action_names[] = {"skip", "log", "move", "soft_delete", "hard_delete"};

const char *cb_action_kind_name(enum cb_action_kind kind)
{
	if ((unsigned)kind >= sizeof(action_names) / sizeof(action_names[0]))
		return "unknown";
	return action_names[kind];
}

int cb_action_kind_parse(const char *name, enum cb_action_kind *out)
{
	for (size_t i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++) {
		if (strcmp(name, action_names[i]) == 0) {
			*out = (enum cb_action_kind)i;
			return 0;
		}
	}
	return -1;
}
