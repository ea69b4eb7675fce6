/* vmctl: control the vmd daemon.  Commands are looked up by unambiguous prefix. */
#include <stdio.h>
#include <stdlib.h>

static void
usage(void)
{
	fprintf(stderr, "usage: vmctl command [arg ...]\n");
	exit(1);
}

int
main(int argc, char *argv[])
{
	if (argc < 2)
		usage();
	fprintf(stderr, "vmctl: %s: not built yet\n", argv[1]);
	return 1;
}
