/*
 * vmctl's commands.  Each is a function in its own file, listed in the
 * table in main.c; it gets argv with argv[0] naming the command and returns
 * the exit status.
 */
#ifndef VMD_VMCTL_H
#define VMD_VMCTL_H

int cmd_create(int argc, char *argv[]);

#endif
