/*
 * vmctl's commands.  Each is a function in its own file, listed in the
 * table in main.c; it gets argv with argv[0] naming the command and returns
 * the exit status.
 */
#ifndef VMD_VMCTL_H
#define VMD_VMCTL_H

#include <stddef.h>
#include <stdint.h>

#include "common/proto.h"

int cmd_create(int argc, char *argv[]);
int cmd_start(int argc, char *argv[]);
int cmd_stop(int argc, char *argv[]);
int cmd_wait(int argc, char *argv[]);
int cmd_pause(int argc, char *argv[]);
int cmd_unpause(int argc, char *argv[]);
int cmd_status(int argc, char *argv[]);
int cmd_console(int argc, char *argv[]);
int cmd_load(int argc, char *argv[]);
int cmd_reload(int argc, char *argv[]);
int cmd_reset(int argc, char *argv[]);
int cmd_log(int argc, char *argv[]);

/* ctl.c: talking to vmd */
int ctl_connect(void);
int ctl_send(int fd, uint32_t type, const void *payload, size_t len);
int ctl_result(int fd, struct ctl_result *result, int *result_fd,
	       void (*on_info)(const struct ctl_vm_info *, void *), void *arg);
int ctl_request(uint32_t type, const void *payload, size_t len, struct ctl_result *result,
		int *result_fd, void (*on_info)(const struct ctl_vm_info *, void *), void *arg);
int ctl_report(const struct ctl_result *r, int quiet);
int ctl_target(const char *text, struct ctl_target *t);
int ctl_simple(uint32_t type, const char *what, int argc, char *argv[]);

/* console.c: relays a tty to stdin and stdout until ~. or its end */
int console_attach(int tty, const char *name);

/* main.c: the command table's lookup, for the unit tests too */
struct command {
	const char *name;
	int (*run)(int argc, char *argv[]);
	const char *usage; /* arguments after the name */
};
const struct command *command_find(const struct command *table, size_t count,
				   const char *name, int *ambiguous);

#endif
