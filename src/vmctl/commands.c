/*
 * vmctl's commands about running VMs and the daemon: stop, wait, pause,
 * unpause, status (show), console, load, reload, reset, log.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include "vmctl/vmctl.h"

/* The names of the VMs a status reply lists (for stop -a). */
struct vm_list {
	struct ctl_vm_info vms[VMD_MAX_VMS];
	int count;
};

static void
collect_info(const struct ctl_vm_info *info, void *arg)
{
	struct vm_list *list = arg;

	if (list->count < VMD_MAX_VMS)
		list->vms[list->count++] = *info;
}

/* stop -a: sends every stop first, so that the VMs shut down in parallel. */
static int
stop_all(uint32_t flags)
{
	static struct vm_list list;
	struct ctl_target t = { .flags = CTL_STATUS_RUNNING };
	struct ctl_result r;
	int status = 0;

	if (ctl_request(MSG_CTL_STATUS, &t, sizeof(t), &r, NULL, collect_info, &list) < 0)
		return 1;
	for (int i = 0; i < list.count; i++) {
		if (strcmp(list.vms[i].state, "stopped") == 0)
			continue;
		t = (struct ctl_target){ .id = list.vms[i].id, .flags = flags & CTL_STOP_FORCE };
		if (ctl_request(MSG_CTL_STOP, &t, sizeof(t), &r, NULL, NULL, NULL) < 0 ||
		    ctl_report(&r, 0) != 0)
			status = 1;
	}
	if (!(flags & CTL_STOP_WAIT))
		return status;
	for (int i = 0; i < list.count; i++) {
		t = (struct ctl_target){ .id = list.vms[i].id };
		/* A VM that is gone already has stopped. */
		if (ctl_request(MSG_CTL_WAIT, &t, sizeof(t), &r, NULL, NULL, NULL) < 0)
			status = 1;
	}
	return status;
}

int
cmd_stop(int argc, char *argv[])
{
	struct ctl_target t;
	struct ctl_result r;
	uint32_t flags = 0;
	int ch;

	while ((ch = getopt(argc, argv, "afw")) != -1) {
		switch (ch) {
		case 'a': flags |= CTL_STOP_ALL; break;
		case 'f': flags |= CTL_STOP_FORCE; break;
		case 'w': flags |= CTL_STOP_WAIT; break;
		default: goto usage;
		}
	}
	argc -= optind;
	argv += optind;
	if (flags & CTL_STOP_ALL) {
		if (argc != 0)
			goto usage;
		return stop_all(flags);
	}
	if (argc != 1)
		goto usage;
	if (ctl_target(argv[0], &t) < 0)
		return 1;
	t.flags = flags;
	if (ctl_request(MSG_CTL_STOP, &t, sizeof(t), &r, NULL, NULL, NULL) < 0)
		return 1;
	return ctl_report(&r, 0);
usage:
	fprintf(stderr, "usage: vmctl stop [-fw] [-a | id]\n");
	return 1;
}

int
cmd_wait(int argc, char *argv[])
{
	return ctl_simple(MSG_CTL_WAIT, "wait", argc, argv);
}

int
cmd_pause(int argc, char *argv[])
{
	return ctl_simple(MSG_CTL_PAUSE, "pause", argc, argv);
}

int
cmd_unpause(int argc, char *argv[])
{
	return ctl_simple(MSG_CTL_UNPAUSE, "unpause", argc, argv);
}

static void
print_header(int *header)
{
	if (*header)
		return;
	printf("%5s %7s %5s %7s %7s %12s %8s %8s %s\n", "ID", "PID", "VCPUS", "MAXMEM", "CURMEM",
	       "TTY", "OWNER", "STATE", "NAME");
	*header = 1;
}

static void
print_info(const struct ctl_vm_info *info, void *arg)
{
	char maxmem[32], curmem[32] = "-", pid[16] = "-";

	print_header(arg);
	vm_format_size(info->memory, maxmem, sizeof(maxmem));
	if (info->pid > 0) {
		snprintf(pid, sizeof(pid), "%d", info->pid);
		/* Whole megabytes: what the guest has touched so far. */
		vm_format_size((info->cur_memory + (1 << 20) - 1) & ~((1ULL << 20) - 1), curmem,
			       sizeof(curmem));
	}
	printf("%5u %7s %5u %7s %7s %12s %8s %8s %s\n", info->id, pid, info->cpus, maxmem, curmem,
	       info->tty, info->owner, info->state, info->name);
}

int
cmd_status(int argc, char *argv[])
{
	struct ctl_target t = { 0 };
	struct ctl_result r;
	int ch, header = 0;

	while ((ch = getopt(argc, argv, "r")) != -1) {
		if (ch != 'r')
			goto usage;
		t.flags |= CTL_STATUS_RUNNING;
	}
	argc -= optind;
	argv += optind;
	if (argc > 1)
		goto usage;
	if (argc == 1) {
		uint32_t flags = t.flags;

		if (ctl_target(argv[0], &t) < 0)
			return 1;
		t.flags = flags;
	}
	if (ctl_request(MSG_CTL_STATUS, &t, sizeof(t), &r, NULL, print_info, &header) < 0)
		return 1;
	if (r.error == 0)
		print_header(&header);
	return ctl_report(&r, 1);
usage:
	fprintf(stderr, "usage: vmctl status [-r] [id]\n");
	return 1;
}

int
cmd_console(int argc, char *argv[])
{
	struct ctl_target t;
	struct ctl_result r;
	int tty;

	if (argc != 2) {
		fprintf(stderr, "usage: vmctl console id\n");
		return 1;
	}
	if (ctl_target(argv[1], &t) < 0)
		return 1;
	if (ctl_request(MSG_CTL_CONSOLE, &t, sizeof(t), &r, &tty, NULL, NULL) < 0)
		return 1;
	if (r.error != 0 || tty < 0) {
		ctl_report(&r, 1);
		return 1;
	}
	return console_attach(tty, r.message);
}

int
cmd_load(int argc, char *argv[])
{
	static struct ctl_path p;
	struct ctl_result r;
	char cwd[PATH_MAX];

	if (argc != 2) {
		fprintf(stderr, "usage: vmctl load file\n");
		return 1;
	}
	if (argv[1][0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL) {
		if ((size_t)snprintf(p.path, sizeof(p.path), "%.*s/%s", PATH_MAX / 2, cwd,
				     argv[1]) >= sizeof(p.path)) {
			fprintf(stderr, "vmctl: %s: path too long\n", argv[1]);
			return 1;
		}
	} else {
		snprintf(p.path, sizeof(p.path), "%s", argv[1]);
	}
	if (ctl_request(MSG_CTL_LOAD, &p, sizeof(p), &r, NULL, NULL, NULL) < 0)
		return 1;
	return ctl_report(&r, 0);
}

int
cmd_reload(int argc, char *argv[])
{
	struct ctl_target t = { 0 };
	struct ctl_result r;

	if (argc != 1) {
		fprintf(stderr, "usage: vmctl reload\n");
		return 1;
	}
	if (ctl_request(MSG_CTL_RELOAD, &t, sizeof(t), &r, NULL, NULL, NULL) < 0)
		return 1;
	return ctl_report(&r, 0);
}

int
cmd_reset(int argc, char *argv[])
{
	struct ctl_target t = { .flags = CTL_RESET_ALL };
	struct ctl_result r;

	if (argc > 2)
		goto usage;
	if (argc == 2) {
		if (strcmp(argv[1], "all") == 0)
			t.flags = CTL_RESET_ALL;
		else if (strcmp(argv[1], "vms") == 0)
			t.flags = CTL_RESET_VMS;
		else if (strcmp(argv[1], "switches") == 0)
			t.flags = CTL_RESET_SWITCHES;
		else
			goto usage;
	}
	if (ctl_request(MSG_CTL_RESET, &t, sizeof(t), &r, NULL, NULL, NULL) < 0)
		return 1;
	return ctl_report(&r, 0);
usage:
	fprintf(stderr, "usage: vmctl reset [all | vms | switches]\n");
	return 1;
}

int
cmd_log(int argc, char *argv[])
{
	struct ctl_target t = { 0 };
	struct ctl_result r;

	if (argc != 2 || (strcmp(argv[1], "brief") != 0 && strcmp(argv[1], "verbose") != 0)) {
		fprintf(stderr, "usage: vmctl log brief | verbose\n");
		return 1;
	}
	t.flags = strcmp(argv[1], "verbose") == 0 ? 2 : 0;
	if (ctl_request(MSG_CTL_LOG, &t, sizeof(t), &r, NULL, NULL, NULL) < 0)
		return 1;
	return ctl_report(&r, 0);
}
