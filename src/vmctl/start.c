/*
 * vmctl start [-cL] [-B device] [-b | -k path] [-I initrd] [-a cmdline]
 *     [-d disk]... [-i count] [-m size] [-n switch]... [-p cpus] [-r iso]
 *     [-t template] name
 *
 * Options may follow the name.  They fill a struct vm_params through the
 * same setters as vm.conf, marking what was given; vmd applies them over the
 * VM's configuration (or the template's) where the user may.
 */
#include <bsd/stdlib.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmctl/vmctl.h"

static int
start_usage(void)
{
	fprintf(stderr, "usage: vmctl start [-cL] [-B device] [-b | -k path] [-I initrd] "
			"[-a cmdline]\n"
			"           [-d disk]... [-i count] [-m size] [-n switch]... [-p cpus]\n"
			"           [-r iso] [-t template] name\n");
	return 1;
}

/* vmd opens paths from its own directory: make them absolute here. */
static const char *
absolute(const char *path, char *buf, size_t len)
{
	char cwd[PATH_MAX];

	if (path[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		return path;
	if ((size_t)snprintf(buf, len, "%s/%s", cwd, path) >= len)
		return path;
	return buf;
}

/* -d [raw:|qcow2:]path */
static int
add_disk(struct vm_params *p, const char *arg, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	const char *format = NULL;

	if (strncmp(arg, "raw:", 4) == 0) {
		format = "raw";
		arg += 4;
	} else if (strncmp(arg, "qcow2:", 6) == 0) {
		format = "qcow2";
		arg += 6;
	}
	return vm_add_disk(p, absolute(arg, buf, sizeof(buf)), format, false, err, errlen);
}

static int
add_nic(struct vm_params *p, const char *switch_name, char *err, size_t errlen)
{
	struct vm_nic nic = { 0 };

	if (switch_name == NULL)
		nic.flags = VM_NIC_LOCAL;
	else if (vm_check_name("switch", switch_name, err, errlen) < 0)
		return -1;
	else
		snprintf(nic.switch_name, sizeof(nic.switch_name), "%s", switch_name);
	return vm_add_nic(p, &nic, err, errlen);
}

static int
start_option(struct ctl_start *req, int ch, const char *arg, int *console, char *err,
	     size_t errlen)
{
	struct vm_params *p = &req->params;
	char buf[PATH_MAX];
	const char *errstr = NULL;
	long long n;

	switch (ch) {
	case 'a': return vm_set_cmdline(p, arg, err, errlen);
	case 'B': return vm_set_boot_device(p, arg, err, errlen);
	case 'b':
	case 'k': return vm_set_kernel(p, absolute(arg, buf, sizeof(buf)), err, errlen);
	case 'c': *console = 1; return 0;
	case 'd': return add_disk(p, arg, err, errlen);
	case 'I': return vm_set_initrd(p, absolute(arg, buf, sizeof(buf)), err, errlen);
	case 'i':
		n = strtonum(arg, 1, VM_MAX_NICS, &errstr);
		if (errstr) {
			snprintf(err, errlen, "interfaces %s: %s (1 to %d)", arg, errstr, VM_MAX_NICS);
			return -1;
		}
		return vm_set_min_nics(p, n, err, errlen);
	case 'L': return add_nic(p, NULL, err, errlen);
	case 'm': return vm_set_memory(p, arg, err, errlen);
	case 'n': return add_nic(p, arg, err, errlen);
	case 'p':
		n = strtonum(arg, 1, VM_MAX_CPUS, &errstr);
		if (errstr) {
			snprintf(err, errlen, "cpus %s: %s (1 to %d)", arg, errstr, VM_MAX_CPUS);
			return -1;
		}
		return vm_set_cpus(p, n, err, errlen);
	case 'r': return vm_set_cdrom(p, absolute(arg, buf, sizeof(buf)), err, errlen);
	case 't':
		if (vm_check_name("template", arg, err, errlen) < 0)
			return -1;
		snprintf(p->template_name, sizeof(p->template_name), "%s", arg);
		return 0;
	}
	return -2;
}

int
cmd_start(int argc, char *argv[])
{
	static struct ctl_start req;
	struct ctl_result r;
	char err[512];
	const char *name = NULL;
	int ch, console = 0, rc, tty;

	vm_params_init(&req.params, "");
	/* glibc's getopt permutes: options may follow the name. */
	while ((ch = getopt(argc, argv, "a:B:b:cd:I:i:k:Lm:n:p:r:t:")) != -1) {
		rc = start_option(&req, ch, optarg, &console, err, sizeof(err));
		if (rc == -2)
			return start_usage();
		if (rc < 0) {
			fprintf(stderr, "vmctl: %s\n", err);
			return 1;
		}
	}
	if (optind != argc - 1)
		return start_usage();
	name = argv[optind];
	if (vm_check_name("vm", name, err, sizeof(err)) < 0) {
		fprintf(stderr, "vmctl: %s\n", err);
		return 1;
	}
	snprintf(req.params.name, sizeof(req.params.name), "%s", name);
	if (ctl_request(MSG_CTL_START, &req, sizeof(req), &r, NULL, NULL, NULL) < 0)
		return 1;
	if (ctl_report(&r, 0) != 0)
		return 1;
	if (!console)
		return 0;
	{
		struct ctl_target t = { .id = r.id };

		if (ctl_request(MSG_CTL_CONSOLE, &t, sizeof(t), &r, &tty, NULL, NULL) < 0)
			return 1;
		if (r.error != 0 || tty < 0)
			return ctl_report(&r, 1) ? 1 : 1;
		return console_attach(tty, r.message);
	}
}
