/* vmctl: control the vmd daemon.  Commands are looked up by unambiguous prefix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmctl/vmctl.h"

/* Adding a command is one line here plus its function in its own file. */
static const struct command commands[] = {
	{ "console", cmd_console, "id" },
	{ "create", cmd_create, "[-f] [-b base | -i input] [-s size] [raw:|qcow2:]disk" },
	{ "load", cmd_load, "file" },
	{ "log", cmd_log, "brief | verbose" },
	{ "pause", cmd_pause, "id" },
	{ "reload", cmd_reload, "" },
	{ "reset", cmd_reset, "[all | vms | switches]" },
	{ "show", cmd_status, "[-r] [id]" },
	{ "start", cmd_start, "[-cL] [-B device] [-b | -k path] [-I initrd] [-a cmdline]\n"
			      "             [-d disk] ... [-i count] [-m size] [-n switch] ...\n"
			      "             [-p cpus] [-r iso] [-t template] name" },
	{ "status", cmd_status, "[-r] [id]" },
	{ "stop", cmd_stop, "[-fw] [-a | id]" },
	{ "unpause", cmd_unpause, "id" },
	{ "wait", cmd_wait, "id" },
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static void
usage(void)
{
	fprintf(stderr, "usage: vmctl command [arg ...]\n");
	for (size_t i = 0; i < COMMAND_COUNT; i++)
		fprintf(stderr, "       vmctl %s %s\n", commands[i].name, commands[i].usage);
	exit(1);
}

int
main(int argc, char *argv[])
{
	const struct command *command;
	int ambiguous;

	if (argc < 2)
		usage();
	command = command_find(commands, COMMAND_COUNT, argv[1], &ambiguous);
	if (command == NULL) {
		fprintf(stderr, "vmctl: %s command: %s\n", ambiguous ? "ambiguous" : "unknown",
			argv[1]);
		usage();
	}
	return command->run(argc - 1, argv + 1);
}
