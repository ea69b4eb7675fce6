#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vmd/vmd.h"

static void
usage(void)
{
	fprintf(stderr, "usage: vmd [-dnv] [-D macro=value] [-f file]\n"
			"       vmd -V [-k kernel] [-I initrd] [-a cmdline] [-m size] [-p cpus]\n");
	exit(1);
}

int
vmd_main(int argc, char *argv[])
{
	int ch;

	while ((ch = getopt(argc, argv, "dnvD:f:")) != -1) {
		switch (ch) {
		case 'd': case 'n': case 'v': case 'D': case 'f':
			break;
		default:
			usage();
		}
	}
	fprintf(stderr, "vmd: the daemon is not built yet (issue 4); see vmd -V\n");
	return 1;
}
