#include <stdio.h>
#include "vm/vm.h"
int
vm_main(int argc, char *argv[])
{
	(void)argc; (void)argv;
	fprintf(stderr, "vmd -V: not built yet\n");
	return VM_EXIT_ERROR;
}
