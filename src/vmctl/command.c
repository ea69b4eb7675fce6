#include <stdio.h>
#include <string.h>

#include "vmctl/vmctl.h"

/* An exact name, or a prefix of exactly one name; NULL otherwise. */
const struct command *
command_find(const struct command *table, size_t count, const char *name, int *ambiguous)
{
	const struct command *found = NULL;
	size_t len = strlen(name);

	*ambiguous = 0;
	for (size_t i = 0; i < count; i++) {
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
		if (len > 0 && strncmp(table[i].name, name, len) == 0) {
			if (found != NULL) {
				*ambiguous = 1;
				return NULL;
			}
			found = &table[i];
		}
	}
	return found;
}
