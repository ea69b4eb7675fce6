/*
 * The parsed configuration: lookups, additions, and printing it back in
 * normalized vm.conf syntax (`vmd -n -v`).  The printed form spells out
 * every VM in full, instances included, with macros expanded; it parses
 * back to the same configuration, so printing it again gives the same text.
 */
#include "vmd/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void
config_init(struct vmd_config *conf)
{
	memset(conf, 0, sizeof(*conf));
	vmd_globals_init(&conf->globals);
}

void
config_free(struct vmd_config *conf)
{
	free(conf->switches);
	free(conf->vms);
	config_init(conf);
}

int
config_check_define(const char *define, char *err, size_t errlen)
{
	const char *eq = strchr(define, '=');

	if (eq == NULL || eq == define) {
		snprintf(err, errlen, "-D %s: expected name=value", define);
		return -1;
	}
	if (isdigit((unsigned char)define[0]))
		goto bad;
	for (const char *c = define; c < eq; c++)
		if (!isascii((unsigned char)*c) || !(isalnum((unsigned char)*c) || *c == '_'))
			goto bad;
	return 0;
bad:
	snprintf(err, errlen,
		 "-D %s: a macro name has letters, digits and '_' and starts with no digit",
		 define);
	return -1;
}

struct vm_params *
config_find_vm(const struct vmd_config *conf, const char *name)
{
	for (size_t i = 0; i < conf->nvms; i++)
		if (strcmp(conf->vms[i].name, name) == 0)
			return &conf->vms[i];
	return NULL;
}

struct vm_switch *
config_find_switch(const struct vmd_config *conf, const char *name)
{
	for (size_t i = 0; i < conf->nswitches; i++)
		if (strcmp(conf->switches[i].name, name) == 0)
			return &conf->switches[i];
	return NULL;
}

int
config_add_vm(struct vmd_config *conf, const struct vm_params *vm)
{
	struct vm_params *vms;

	if (conf->nvms >= VMD_MAX_VMS)
		return -1;
	if ((vms = reallocarray(conf->vms, conf->nvms + 1, sizeof(*vms))) == NULL)
		return -1;
	conf->vms = vms;
	conf->vms[conf->nvms++] = *vm;
	return 0;
}

int
config_add_switch(struct vmd_config *conf, const struct vm_switch *sw)
{
	struct vm_switch *sws;

	if (conf->nswitches >= VMD_MAX_SWITCHES)
		return -1;
	if ((sws = reallocarray(conf->switches, conf->nswitches + 1, sizeof(*sws))) == NULL)
		return -1;
	conf->switches = sws;
	conf->switches[conf->nswitches++] = *sw;
	return 0;
}

/* A string as vm.conf reads it back: quoted, with '"' and '\' escaped. */
static void
print_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

/* `limit user [name] ...`; returns true. */
static bool
print_user_limit(const struct vmd_user_limit *l, FILE *out)
{
	struct vm_owner who = { l->uid, VM_ID_NONE };
	char name[160], size[32];

	fputs("limit user", out);
	if (l->uid != VM_ID_NONE) {
		vm_format_owner(&who, name, sizeof(name));
		fputc(' ', out);
		print_quoted(out, name);
	}
	if (l->set & VMD_LIMIT_VMS)
		fprintf(out, " vms %u", l->vms);
	if (l->set & VMD_LIMIT_MEMORY) {
		vm_format_size(l->memory, size, sizeof(size));
		fprintf(out, " memory %s", size);
	}
	if (l->set & VMD_LIMIT_CPUS)
		fprintf(out, " cpus %u", l->cpus);
	fputc('\n', out);
	return true;
}

/* Returns whether it printed anything. */
static bool
print_globals(const struct vmd_globals *g, FILE *out)
{
	char addr[INET6_ADDRSTRLEN], owner[160];
	bool any = false;

	if (g->set & VMD_SET_PREFIX4) {
		inet_ntop(AF_INET, &g->prefix4, addr, sizeof(addr));
		fprintf(out, "local prefix %s/%u\n", addr, g->prefix4_len);
		any = true;
	}
	if (g->inet6) {
		inet_ntop(AF_INET6, &g->prefix6, addr, sizeof(addr));
		fprintf(out, "local inet6 prefix %s/%u\n", addr, g->prefix6_len);
		any = true;
	}
	if (g->set & VMD_SET_SOCKET) {
		vm_format_owner(&g->socket_owner, owner, sizeof(owner));
		fputs("socket owner ", out);
		print_quoted(out, owner);
		fputc('\n', out);
		any = true;
	}
	if (g->set & VMD_SET_STAGGER) {
		fprintf(out, "staggered start parallel %u delay %u\n", g->stagger_parallel,
			g->stagger_delay);
		any = true;
	}
	if (g->user_limit.set)
		any = print_user_limit(&g->user_limit, out);
	for (uint32_t i = 0; i < g->nuser_limits; i++)
		any = print_user_limit(&g->user_limits[i], out);
	return any;
}

static void
print_switch(const struct vm_switch *sw, FILE *out)
{
	fputs("switch ", out);
	print_quoted(out, sw->name);
	fputs(" {\n", out);
	if (sw->ifname[0] != '\0') {
		fputs("\tinterface ", out);
		print_quoted(out, sw->ifname);
		fputc('\n', out);
	}
	if (sw->group[0] != '\0') {
		fputs("\tgroup ", out);
		print_quoted(out, sw->group);
		fputc('\n', out);
	}
	if (sw->locked_lladdr)
		fputs("\tlocked lladdr\n", out);
	if (sw->down)
		fputs("\tdown\n", out);
	if (!sw->enabled)
		fputs("\tdisable\n", out);
	fputs("}\n", out);
}

static void
print_path(FILE *out, const char *keyword, const char *path)
{
	if (path[0] == '\0')
		return;
	fprintf(out, "\t%s ", keyword);
	print_quoted(out, path);
	fputc('\n', out);
}

static void
print_nic(const struct vm_nic *nic, FILE *out)
{
	const char *sep = " { ";

	fputc('\t', out);
	if (nic->flags & VM_NIC_LOCAL)
		fputs("local ", out);
	fputs("interface", out);
	if (nic->ifname[0] != '\0') {
		fputc(' ', out);
		print_quoted(out, nic->ifname);
	}
	if (nic->switch_name[0] != '\0') {
		fputs(sep, out);
		fputs("switch ", out);
		print_quoted(out, nic->switch_name);
		sep = ", ";
	}
	if (nic->group[0] != '\0') {
		fputs(sep, out);
		fputs("group ", out);
		print_quoted(out, nic->group);
		sep = ", ";
	}
	if (nic->flags & (VM_NIC_LOCKED | VM_NIC_LLADDR)) {
		fputs(sep, out);
		fputs(nic->flags & VM_NIC_LOCKED ? "locked lladdr" : "lladdr", out);
		if (nic->flags & VM_NIC_LLADDR)
			fprintf(out, " %02x:%02x:%02x:%02x:%02x:%02x", nic->lladdr[0],
				nic->lladdr[1], nic->lladdr[2], nic->lladdr[3], nic->lladdr[4],
				nic->lladdr[5]);
		sep = ", ";
	}
	if (nic->flags & VM_NIC_DOWN) {
		fputs(sep, out);
		fputs("down", out);
		sep = ", ";
	}
	fputs(sep[0] == ',' ? " }\n" : "\n", out);
}

static void
print_allow(const struct vm_params *vm, FILE *out)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} items[] = {
		{ VM_ALLOW_BOOT, "boot" },	   { VM_ALLOW_CDROM, "cdrom" },
		{ VM_ALLOW_CPUS, "cpus" },	   { VM_ALLOW_DISK, "disk" },
		{ VM_ALLOW_INSTANCE, "instance" }, { VM_ALLOW_INTERFACE, "interface" },
		{ VM_ALLOW_MEMORY, "memory" },
	};
	const char *sep = "\tallow instance { ";
	char owner[160];

	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		if (vm->allow & items[i].bit) {
			fprintf(out, "%s%s", sep, items[i].name);
			sep = ", ";
		}
	}
	if (vm->instance_owner.uid != VM_ID_NONE || vm->instance_owner.gid != VM_ID_NONE) {
		vm_format_owner(&vm->instance_owner, owner, sizeof(owner));
		fprintf(out, "%sowner ", sep);
		print_quoted(out, owner);
		sep = ", ";
	}
	if (sep[0] == ',')
		fputs(" }\n", out);
}

static void
print_vm(const struct vmd_config *conf, const struct vm_params *vm, FILE *out)
{
	const struct vm_params *tmpl = NULL;
	char size[32], owner[160];

	fputs("vm ", out);
	if (vm->template_name[0] != '\0') {
		tmpl = config_find_vm(conf, vm->template_name);
		print_quoted(out, vm->template_name);
		fputs(" instance ", out);
	}
	print_quoted(out, vm->name);
	fputs(" {\n", out);
	vm_format_size(vm->memory, size, sizeof(size));
	fprintf(out, "\tmemory %s\n\tcpus %u\n", size, vm->cpus);
	print_path(out, "kernel", vm->kernel);
	print_path(out, "initrd", vm->initrd);
	/* An instance may clear its template's command line: say so. */
	if (vm->cmdline[0] != '\0' || (tmpl != NULL && tmpl->cmdline[0] != '\0')) {
		fputs("\tcmdline ", out);
		print_quoted(out, vm->cmdline);
		fputc('\n', out);
	}
	if (vm->boot_device != VM_BOOT_DEFAULT)
		fprintf(out, "\tboot device %s\n", vm_boot_device_name(vm->boot_device));
	for (uint32_t i = 0; i < vm->ndisks; i++) {
		fputs("\tdisk ", out);
		print_quoted(out, vm->disks[i].path);
		if (vm->disks[i].format != VM_DISK_AUTO)
			fprintf(out, " format %s", vm_disk_format_name(vm->disks[i].format));
		if (vm->disks[i].readonly)
			fputs(" readonly", out);
		fputc('\n', out);
	}
	print_path(out, "cdrom", vm->cdrom);
	for (uint32_t i = 0; i < vm->nnics; i++)
		print_nic(&vm->nics[i], out);
	if (vm->owner.uid != VM_ID_NONE || vm->owner.gid != VM_ID_NONE) {
		vm_format_owner(&vm->owner, owner, sizeof(owner));
		fputs("\towner ", out);
		print_quoted(out, owner);
		fputc('\n', out);
	}
	print_allow(vm, out);
	if (vm->allow & VM_INSTANCE_OWNER_GROUP)
		fputs("\tinstance owner group\n", out);
	if (!vm->enabled)
		fputs("\tdisable\n", out);
	fputs("}\n", out);
}

void
config_print(const struct vmd_config *conf, FILE *out)
{
	bool blank = print_globals(&conf->globals, out);

	/* A blank line between sections, none at the end. */
	for (size_t i = 0; i < conf->nswitches; i++, blank = true) {
		if (blank)
			fputc('\n', out);
		print_switch(&conf->switches[i], out);
	}
	for (size_t i = 0; i < conf->nvms; i++, blank = true) {
		if (blank)
			fputc('\n', out);
		print_vm(conf, &conf->vms[i], out);
	}
}
