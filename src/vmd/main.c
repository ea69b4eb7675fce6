/*
 * vmd's one binary runs every process: the daemon's parent by default, and
 * each child re-executed with a flag (-V: a VM process).
 */
#include <string.h>

#include "vm/vm.h"
#include "vmd/vmd.h"

int
main(int argc, char *argv[])
{
	if (argc > 1 && strcmp(argv[1], "-V") == 0)
		return vm_main(argc - 1, argv + 1);
	return vmd_main(argc, argv);
}
