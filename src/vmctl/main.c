/* vmctl: control the vmd daemon.  Commands are looked up by unambiguous prefix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmctl/vmctl.h"

struct command {
	const char *name;
	int (*run)(int argc, char *argv[]);
	const char *usage; /* arguments after the name */
};

/* Adding a command is one line here plus its function in its own file. */
static const struct command commands[] = {
	{ "create", cmd_create, "[-f] [-b base | -i input] [-s size] [raw:|qcow2:]disk" },
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static void
usage(void)
{
	fprintf(stderr, "usage: vmctl command [arg ...]\n");
	for (size_t i = 0; i < COMMAND_COUNT; i++)
		fprintf(stderr, "       vmctl %s %s\n", commands[i].name,
		    commands[i].usage);
	exit(1);
}

/* An exact name, or a prefix of exactly one name. */
static const struct command *
command_lookup(const char *name)
{
	const struct command *found = NULL;
	size_t len = strlen(name);

	for (size_t i = 0; i < COMMAND_COUNT; i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
		if (len > 0 && strncmp(commands[i].name, name, len) == 0) {
			if (found != NULL) {
				fprintf(stderr, "vmctl: ambiguous command: %s\n",
				    name);
				return NULL;
			}
			found = &commands[i];
		}
	}
	if (found == NULL)
		fprintf(stderr, "vmctl: unknown command: %s\n", name);
	return found;
}

int
main(int argc, char *argv[])
{
	const struct command *command;

	if (argc < 2)
		usage();
	if ((command = command_lookup(argv[1])) == NULL)
		usage();
	return command->run(argc - 1, argv + 1);
}
