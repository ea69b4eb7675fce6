/*
 * vmd's one binary runs every process: the daemon's parent by default, each
 * of its children re-executed with -X (control, vmm, priv), and each VM
 * process with -V.
 */
#include <string.h>

#include "vm/vm.h"
#include "vmd/vmd.h"

int
main(int argc, char *argv[])
{
	if (argc > 1 && strcmp(argv[1], "-V") == 0)
		return vm_main(argc - 1, argv + 1);
	if (argc > 2 && strcmp(argv[1], "-X") == 0)
		return proc_main(argc, argv);
	return vmd_main(argc, argv);
}
