/*
 * vmm's confinement (its row in procs[]): today it becomes _vmd and keeps
 * the file system (it executes the vmd binary it was given, from fd 4).
 */
#include "vmd/vmd.h"

int
vmm_confine(void)
{
	proc_drop_privileges("vmm", false);
	return 0;
}
