/*
 * Defaults, checks and setters for the configuration data model.  vm.conf
 * and vmctl both go through these, so the rules live in one place.
 */
#include "common/size.h"
#include "common/vmconf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>

static int
fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

void
vm_params_init(struct vm_params *vm, const char *name)
{
	memset(vm, 0, sizeof(*vm));
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	vm->memory = VM_MEMORY_DEFAULT;
	vm->cpus = 1;
	vm->owner.uid = vm->owner.gid = VM_ID_NONE;
	vm->instance_owner.uid = vm->instance_owner.gid = VM_ID_NONE;
	vm->enabled = true;
}

void
vm_switch_init(struct vm_switch *sw, const char *name)
{
	memset(sw, 0, sizeof(*sw));
	snprintf(sw->name, sizeof(sw->name), "%s", name);
	sw->enabled = true;
}

void
vmd_globals_init(struct vmd_globals *g)
{
	memset(g, 0, sizeof(*g));
	inet_pton(AF_INET, VMD_PREFIX4_DEFAULT, &g->prefix4);
	g->prefix4_len = VMD_PREFIX4_LEN_DEFAULT;
	inet_pton(AF_INET6, VMD_PREFIX6_DEFAULT, &g->prefix6);
	g->prefix6_len = VMD_PREFIX6_LEN_DEFAULT;
	g->socket_owner.uid = g->socket_owner.gid = VM_ID_NONE;
	g->stagger_delay = VMD_STAGGER_DELAY_DEFAULT;
	g->user_limit = (struct vmd_user_limit){ VM_ID_NONE, 0, VMD_LIMIT_VMS_DEFAULT,
						 VMD_LIMIT_CPUS_DEFAULT, VMD_LIMIT_MEMORY_DEFAULT };
	g->uid_first = VMD_UID_FIRST_DEFAULT;
	g->uid_count = VMD_UID_COUNT_DEFAULT;
}

/* Names are used in paths, interface descriptions and messages: keep them plain. */
int
vm_check_name(const char *what, const char *name, char *err, size_t errlen)
{
	size_t len = strlen(name);

	if (len == 0)
		return fail(err, errlen, "%s name is empty", what);
	if (len > VM_NAME_MAX)
		return fail(err, errlen, "%s name \"%.*s...\" is longer than %d characters",
			    what, 16, name, VM_NAME_MAX);
	if (!isascii((unsigned char)name[0]) || !isalpha((unsigned char)name[0]))
		return fail(err, errlen, "%s name \"%s\" does not start with a letter", what,
			    name);
	for (const char *c = name; *c; c++) {
		if (isascii((unsigned char)*c) &&
		    (isalnum((unsigned char)*c) || strchr(".-_", *c)))
			continue;
		return fail(err, errlen,
			    "%s name \"%s\" has a character other than letters, digits, "
			    "'.', '-' and '_'",
			    what, name);
	}
	return 0;
}

/* "4.5G" -> bytes; a number alone is bytes (see size_parse). */
int
vm_parse_size(const char *text, uint64_t *bytes)
{
	return size_parse(text, 1, bytes);
}

/* The most memory this host could ever give a guest: its RAM and swap. */
uint64_t
vm_host_memory_limit(void)
{
	struct sysinfo si;
	unsigned __int128 total;

	if (sysinfo(&si) == -1)
		return VM_MEMORY_CEILING;
	total = ((unsigned __int128)si.totalram + si.totalswap) * si.mem_unit;
	return total < VM_MEMORY_CEILING ? (uint64_t)total : VM_MEMORY_CEILING;
}

int
vm_set_memory_bytes(struct vm_params *vm, uint64_t bytes, const char *text, char *err,
		    size_t errlen)
{
	char host[32];
	uint64_t limit;

	if (bytes < VM_MEMORY_MINIMUM)
		return fail(err, errlen, "memory %s is below the 1M minimum", text);
	if (bytes > VM_MEMORY_CEILING)
		return fail(err, errlen, "memory %s is above the 1T maximum", text);
	limit = vm_host_memory_limit();
	if (bytes > limit) {
		vm_format_size(limit & ~(VM_MEMORY_ALIGN - 1), host, sizeof(host));
		return fail(err, errlen,
			    "memory %s is more than this host's %s of memory and swap", text,
			    host);
	}
	vm->memory = (bytes + VM_MEMORY_ALIGN - 1) & ~(VM_MEMORY_ALIGN - 1);
	vm->set |= VM_SET_MEMORY;
	return 0;
}

int
vm_set_memory(struct vm_params *vm, const char *text, char *err, size_t errlen)
{
	uint64_t bytes;

	if (vm_parse_size(text, &bytes) == -1)
		return fail(err, errlen, "memory \"%s\" is not a size (such as 512M or 4.5G)",
			    text);
	return vm_set_memory_bytes(vm, bytes, text, err, errlen);
}

int
vm_set_cpus(struct vm_params *vm, long long cpus, char *err, size_t errlen)
{
	if (cpus < 1 || cpus > VM_MAX_CPUS)
		return fail(err, errlen, "cpus %lld is out of range (1 to %d)", cpus,
			    VM_MAX_CPUS);
	vm->cpus = (uint32_t)cpus;
	vm->set |= VM_SET_CPUS;
	return 0;
}

/* dst is a char[PATH_MAX]. */
int
vm_set_path(char *dst, const char *what, const char *path, char *err, size_t errlen)
{
	if (path[0] == '\0')
		return fail(err, errlen, "%s path is empty", what);
	if (strlen(path) >= PATH_MAX)
		return fail(err, errlen, "%s path is longer than %d bytes", what, PATH_MAX - 1);
	memcpy(dst, path, strlen(path) + 1);
	return 0;
}

int
vm_set_kernel(struct vm_params *vm, const char *path, char *err, size_t errlen)
{
	if (vm_set_path(vm->kernel, "kernel", path, err, errlen) == -1)
		return -1;
	vm->set |= VM_SET_KERNEL;
	return 0;
}

int
vm_set_initrd(struct vm_params *vm, const char *path, char *err, size_t errlen)
{
	if (vm_set_path(vm->initrd, "initrd", path, err, errlen) == -1)
		return -1;
	vm->set |= VM_SET_INITRD;
	return 0;
}

int
vm_set_cdrom(struct vm_params *vm, const char *path, char *err, size_t errlen)
{
	if (vm_set_path(vm->cdrom, "cdrom", path, err, errlen) == -1)
		return -1;
	vm->set |= VM_SET_CDROM;
	return 0;
}

int
vm_set_cmdline(struct vm_params *vm, const char *cmdline, char *err, size_t errlen)
{
	if (strlen(cmdline) >= sizeof(vm->cmdline))
		return fail(err, errlen, "cmdline is longer than %zu bytes",
			    sizeof(vm->cmdline) - 1);
	memcpy(vm->cmdline, cmdline, strlen(cmdline) + 1);
	vm->set |= VM_SET_CMDLINE;
	return 0;
}

static const char *const boot_device_names[] = {
	[VM_BOOT_DEFAULT] = "default",
	[VM_BOOT_DISK] = "disk",
	[VM_BOOT_CDROM] = "cdrom",
	[VM_BOOT_NET] = "net",
};

const char *
vm_boot_device_name(uint32_t device)
{
	if (device >= sizeof(boot_device_names) / sizeof(boot_device_names[0]))
		return "invalid";
	return boot_device_names[device];
}

int
vm_set_boot_device(struct vm_params *vm, const char *device, char *err, size_t errlen)
{
	for (uint32_t i = VM_BOOT_DISK; i <= VM_BOOT_NET; i++) {
		if (strcmp(device, boot_device_names[i]) == 0) {
			vm->boot_device = i;
			vm->set |= VM_SET_BOOTDEV;
			return 0;
		}
	}
	return fail(err, errlen, "unknown boot device \"%s\" (disk, cdrom or net)", device);
}

static const char *const disk_format_names[] = {
	[VM_DISK_AUTO] = "auto",
	[VM_DISK_RAW] = "raw",
	[VM_DISK_QCOW2] = "qcow2",
};

const char *
vm_disk_format_name(uint32_t format)
{
	if (format >= sizeof(disk_format_names) / sizeof(disk_format_names[0]))
		return "invalid";
	return disk_format_names[format];
}

/* format may be NULL: detect it when the disk is opened. */
int
vm_add_disk(struct vm_params *vm, const char *path, const char *format, bool readonly,
	    char *err, size_t errlen)
{
	struct vm_disk *disk;
	uint32_t fmt = VM_DISK_AUTO;

	if (vm->ndisks >= VM_MAX_DISKS)
		return fail(err, errlen, "more than %d disks", VM_MAX_DISKS);
	if (format != NULL) {
		if (strcmp(format, "raw") == 0)
			fmt = VM_DISK_RAW;
		else if (strcmp(format, "qcow2") == 0)
			fmt = VM_DISK_QCOW2;
		else
			return fail(err, errlen, "disk %s: unknown format \"%s\" (raw or qcow2)",
				    path, format);
	}
	disk = &vm->disks[vm->ndisks];
	if (vm_set_path(disk->path, "disk", path, err, errlen) == -1)
		return -1;
	disk->format = fmt;
	disk->readonly = readonly;
	vm->ndisks++;
	vm->set |= VM_SET_DISKS;
	return 0;
}

int
vm_add_nic(struct vm_params *vm, const struct vm_nic *nic, char *err, size_t errlen)
{
	if (vm->nnics >= VM_MAX_NICS)
		return fail(err, errlen, "more than %d interfaces", VM_MAX_NICS);
	if ((nic->flags & VM_NIC_LOCAL) && nic->switch_name[0] != '\0')
		return fail(err, errlen,
			    "a local interface cannot be on a switch (switch \"%s\")",
			    nic->switch_name);
	vm->nics[vm->nnics++] = *nic;
	vm->set |= VM_SET_NICS;
	return 0;
}

int
vm_set_min_nics(struct vm_params *vm, long long count, char *err, size_t errlen)
{
	if (count < 1 || count > VM_MAX_NICS)
		return fail(err, errlen, "interfaces %lld is out of range (1 to %d)", count,
			    VM_MAX_NICS);
	vm->min_nics = (uint32_t)count;
	vm->set |= VM_SET_INTERFACES;
	return 0;
}

void
vm_finish_nics(struct vm_params *vm)
{
	while (vm->nnics < vm->min_nics)
		memset(&vm->nics[vm->nnics++], 0, sizeof(vm->nics[0]));
}

/* Linux interface names: at most 15 bytes, and no '/', ':' or spaces. */
int
vm_check_ifname(const char *what, const char *name, char *err, size_t errlen)
{
	size_t len = strlen(name);

	if (len == 0)
		return fail(err, errlen, "%s name is empty", what);
	if (len >= VM_IFNAME_MAX)
		return fail(err, errlen, "%s name \"%s\" is longer than %d characters", what,
			    name, VM_IFNAME_MAX - 1);
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return fail(err, errlen, "%s name \"%s\" is reserved", what, name);
	for (const char *c = name; *c; c++) {
		if (isascii((unsigned char)*c) &&
		    (isalnum((unsigned char)*c) || strchr(".-_", *c)))
			continue;
		return fail(err, errlen,
			    "%s name \"%s\" has a character other than letters, digits, "
			    "'.', '-' and '_'",
			    what, name);
	}
	return 0;
}

static int
hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Six pairs of hex digits separated by ':', unicast and not all zero. */
int
vm_parse_lladdr(const char *text, uint8_t lladdr[6], char *err, size_t errlen)
{
	const char *p = text;
	int hi, lo;

	for (int i = 0; i < 6; i++) {
		if ((hi = hex_value((unsigned char)p[0])) == -1 ||
		    (lo = hex_value((unsigned char)p[1])) == -1 ||
		    p[2] != (i == 5 ? '\0' : ':'))
			return fail(err, errlen,
				    "lladdr \"%s\" is not a MAC address (such as fe:e1:ba:d0:00:01)",
				    text);
		lladdr[i] = (uint8_t)(hi << 4 | lo);
		p += 3;
	}
	if (lladdr[0] & 1)
		return fail(err, errlen, "lladdr %s is a multicast address", text);
	if ((lladdr[0] | lladdr[1] | lladdr[2] | lladdr[3] | lladdr[4] | lladdr[5]) == 0)
		return fail(err, errlen, "lladdr %s is all zeros", text);
	return 0;
}

static int
parse_id(const char *text, uint32_t *id)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)text[0]))
		return -1;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || v >= VM_ID_NONE)
		return -1;
	*id = (uint32_t)v;
	return 0;
}

/* "user", "user:group" or ":group"; names or numeric ids. */
int
vm_parse_owner(const char *text, struct vm_owner *owner, char *err, size_t errlen)
{
	char buf[256], *group;
	struct passwd *pw;
	struct group *gr;

	if (strlen(text) >= sizeof(buf))
		return fail(err, errlen, "owner \"%.32s...\" is too long", text);
	strcpy(buf, text);
	owner->uid = owner->gid = VM_ID_NONE;
	if ((group = strchr(buf, ':')) != NULL)
		*group++ = '\0';
	if (buf[0] == '\0' && (group == NULL || group[0] == '\0'))
		return fail(err, errlen, "owner \"%s\" names no user or group", text);
	if (group != NULL && group[0] == '\0')
		return fail(err, errlen, "owner \"%s\" has an empty group", text);
	if (buf[0] != '\0' && parse_id(buf, &owner->uid) == -1) {
		if ((pw = getpwnam(buf)) == NULL)
			return fail(err, errlen, "unknown user \"%s\"", buf);
		owner->uid = pw->pw_uid;
	}
	if (group != NULL && parse_id(group, &owner->gid) == -1) {
		if ((gr = getgrnam(group)) == NULL)
			return fail(err, errlen, "unknown group \"%s\"", group);
		owner->gid = gr->gr_gid;
	}
	return 0;
}

/* Splits "address/length"; the address part goes to buf. */
static int
split_prefix(const char *text, char *buf, size_t buflen, uint32_t *len, uint32_t maxlen)
{
	const char *slash = strchr(text, '/');
	size_t alen;

	if (slash == NULL || (alen = (size_t)(slash - text)) >= buflen ||
	    parse_id(slash + 1, len) == -1 || *len > maxlen)
		return -1;
	memcpy(buf, text, alen);
	buf[alen] = '\0';
	return 0;
}

static bool
host_bits_set(const uint8_t *addr, size_t addrlen, uint32_t len)
{
	for (size_t bit = len; bit < addrlen * 8; bit++)
		if (addr[bit / 8] & (0x80 >> (bit % 8)))
			return true;
	return false;
}

/* Local interfaces take /31s from it, so /31 is the longest that works. */
int
vm_parse_prefix4(const char *text, struct in_addr *addr, uint32_t *len, char *err,
		 size_t errlen)
{
	char buf[INET_ADDRSTRLEN];

	if (split_prefix(text, buf, sizeof(buf), len, 31) == -1 ||
	    inet_pton(AF_INET, buf, addr) != 1)
		return fail(err, errlen,
			    "prefix \"%s\" is not an IPv4 address/length (length at most 31)",
			    text);
	if (host_bits_set((const uint8_t *)addr, sizeof(*addr), *len))
		return fail(err, errlen, "prefix %s has bits set past the /%u", text, *len);
	return 0;
}

int
vm_parse_prefix6(const char *text, struct in6_addr *addr, uint32_t *len, char *err,
		 size_t errlen)
{
	char buf[INET6_ADDRSTRLEN];

	/* Each local interface gets a /64 from it, so /64 is the longest that works. */
	if (split_prefix(text, buf, sizeof(buf), len, 64) == -1 ||
	    inet_pton(AF_INET6, buf, addr) != 1)
		return fail(err, errlen,
			    "prefix \"%s\" is not an IPv6 address/length (length at most 64)",
			    text);
	if (host_bits_set((const uint8_t *)addr, sizeof(*addr), *len))
		return fail(err, errlen, "prefix %s has bits set past the /%u", text, *len);
	return 0;
}

static bool
disks_equal(const struct vm_params *a, const struct vm_params *b)
{
	if (a->ndisks != b->ndisks)
		return false;
	for (uint32_t i = 0; i < a->ndisks; i++)
		if (strcmp(a->disks[i].path, b->disks[i].path) != 0 ||
		    a->disks[i].format != b->disks[i].format ||
		    a->disks[i].readonly != b->disks[i].readonly)
			return false;
	return true;
}

static bool
nics_equal(const struct vm_params *a, const struct vm_params *b)
{
	if (a->nnics != b->nnics)
		return false;
	for (uint32_t i = 0; i < a->nnics; i++) {
		const struct vm_nic *x = &a->nics[i], *y = &b->nics[i];

		if (strcmp(x->ifname, y->ifname) != 0 ||
		    strcmp(x->switch_name, y->switch_name) != 0 ||
		    strcmp(x->group, y->group) != 0 || x->flags != y->flags ||
		    ((x->flags & VM_NIC_LLADDR) && memcmp(x->lladdr, y->lladdr, 6) != 0))
			return false;
	}
	return true;
}

static bool
owners_equal(const struct vm_owner *a, const struct vm_owner *b)
{
	return a->uid == b->uid && a->gid == b->gid;
}

/* Takes the template's value of everything the instance did not set. */
static void
inherit_unset(const struct vm_params *tmpl, struct vm_params *inst)
{
	if (!(inst->set & VM_SET_MEMORY))
		inst->memory = tmpl->memory;
	if (!(inst->set & VM_SET_CPUS))
		inst->cpus = tmpl->cpus;
	if (!(inst->set & VM_SET_KERNEL))
		memcpy(inst->kernel, tmpl->kernel, sizeof(inst->kernel));
	if (!(inst->set & VM_SET_INITRD))
		memcpy(inst->initrd, tmpl->initrd, sizeof(inst->initrd));
	if (!(inst->set & VM_SET_CMDLINE))
		memcpy(inst->cmdline, tmpl->cmdline, sizeof(inst->cmdline));
	if (!(inst->set & VM_SET_BOOTDEV))
		inst->boot_device = tmpl->boot_device;
	if (!(inst->set & VM_SET_DISKS)) {
		memcpy(inst->disks, tmpl->disks, sizeof(inst->disks));
		inst->ndisks = tmpl->ndisks;
	}
	if (!(inst->set & VM_SET_CDROM))
		memcpy(inst->cdrom, tmpl->cdrom, sizeof(inst->cdrom));
	if (!(inst->set & (VM_SET_NICS | VM_SET_INTERFACES))) {
		memcpy(inst->nics, tmpl->nics, sizeof(inst->nics));
		inst->nnics = tmpl->nnics;
	}
	if (!(inst->set & VM_SET_OWNER))
		inst->owner = tmpl->owner;
	if (!(inst->set & VM_SET_ALLOW)) {
		inst->allow = tmpl->allow;
		inst->instance_owner = tmpl->instance_owner;
	}
}

/* The categories (VM_ALLOW_*) in which inst differs from tmpl. */
static uint32_t
changed_categories(const struct vm_params *tmpl, const struct vm_params *inst)
{
	uint32_t changed = 0;

	if (strcmp(tmpl->kernel, inst->kernel) != 0 ||
	    strcmp(tmpl->initrd, inst->initrd) != 0 ||
	    strcmp(tmpl->cmdline, inst->cmdline) != 0 ||
	    tmpl->boot_device != inst->boot_device)
		changed |= VM_ALLOW_BOOT;
	if (strcmp(tmpl->cdrom, inst->cdrom) != 0)
		changed |= VM_ALLOW_CDROM;
	if (tmpl->cpus != inst->cpus)
		changed |= VM_ALLOW_CPUS;
	if (!disks_equal(tmpl, inst))
		changed |= VM_ALLOW_DISK;
	if (tmpl->allow != inst->allow ||
	    !owners_equal(&tmpl->instance_owner, &inst->instance_owner))
		changed |= VM_ALLOW_INSTANCE;
	if (!nics_equal(tmpl, inst))
		changed |= VM_ALLOW_INTERFACE;
	if (tmpl->memory != inst->memory)
		changed |= VM_ALLOW_MEMORY;
	if (!owners_equal(&tmpl->owner, &inst->owner))
		changed |= VM_ALLOW_OWNER;
	return changed;
}

static const char *
category_name(uint32_t bit)
{
	switch (bit) {
	case VM_ALLOW_BOOT: return "boot";
	case VM_ALLOW_CDROM: return "cdrom";
	case VM_ALLOW_CPUS: return "cpus";
	case VM_ALLOW_DISK: return "disk";
	case VM_ALLOW_INSTANCE: return "instance";
	case VM_ALLOW_INTERFACE: return "interface";
	case VM_ALLOW_MEMORY: return "memory";
	case VM_ALLOW_OWNER: return "owner";
	}
	return "?";
}

/*
 * An instance may repeat its template's values (so that `vmd -n -v`, which
 * prints instances in full, reads back); what differs must be allowed.
 */
int
vm_instantiate(const struct vm_params *tmpl, struct vm_params *inst, char *err,
	       size_t errlen)
{
	uint32_t forbidden;

	if (tmpl->template_name[0] != '\0' && !(tmpl->allow & VM_ALLOW_INSTANCE))
		return fail(err, errlen,
			    "vm \"%s\": \"%s\" is an instance of \"%s\", which does not allow "
			    "instances of its instances",
			    inst->name, tmpl->name, tmpl->template_name);
	inherit_unset(tmpl, inst);
	/* `interfaces N` and -i N add interfaces: compare what the VM will have. */
	vm_finish_nics(inst);
	snprintf(inst->template_name, sizeof(inst->template_name), "%s", tmpl->name);
	forbidden = changed_categories(tmpl, inst) & ~tmpl->allow;
	if (forbidden == 0)
		return 0;
	return fail(err, errlen,
		    "vm \"%s\": template \"%s\" does not allow instances to change %s",
		    inst->name, tmpl->name, category_name(forbidden & -forbidden));
}

/* Bytes as the largest unit that divides them: 4608M, 2G, 1T. */
void
vm_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	int i;

	for (i = 3; i >= 0; i--) {
		uint64_t unit = 1ULL << (10 * (i + 1));

		if (bytes != 0 && bytes % unit == 0) {
			snprintf(buf, len, "%llu%c", (unsigned long long)(bytes / unit),
				 units[i]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)bytes);
}

/* Names where this host knows them, numbers otherwise. */
void
vm_format_owner(const struct vm_owner *owner, char *buf, size_t len)
{
	char user[64] = "", group[64] = "";
	struct passwd *pw;
	struct group *gr;

	if (owner->uid != VM_ID_NONE) {
		if ((pw = getpwuid(owner->uid)) != NULL && strlen(pw->pw_name) < sizeof(user))
			snprintf(user, sizeof(user), "%s", pw->pw_name);
		else
			snprintf(user, sizeof(user), "%u", owner->uid);
	}
	if (owner->gid != VM_ID_NONE) {
		if ((gr = getgrgid(owner->gid)) != NULL && strlen(gr->gr_name) < sizeof(group))
			snprintf(group, sizeof(group), "%s", gr->gr_name);
		else
			snprintf(group, sizeof(group), "%u", owner->gid);
		snprintf(buf, len, "%s:%s", user, group);
	} else {
		snprintf(buf, len, "%s", user);
	}
}

#define TERMINATE(array) ((array)[sizeof(array) - 1] = '\0')

#define VM_NIC_FLAGS (VM_NIC_LOCAL | VM_NIC_LLADDR | VM_NIC_LOCKED | VM_NIC_DOWN)

/* An interface as vm.conf's grammar could have written it: names that are names. */
static int
check_received_nic(const struct vm_params *vm, uint32_t index, char *err, size_t errlen)
{
	const struct vm_nic *nic = &vm->nics[index];
	char why[256];

	if (nic->ifname[0] != '\0' && vm_check_ifname("interface", nic->ifname, why, sizeof(why)) == -1)
		return fail(err, errlen, "vm \"%s\": interface %u: %s", vm->name, index, why);
	if (nic->group[0] != '\0' && vm_check_ifname("group", nic->group, why, sizeof(why)) == -1)
		return fail(err, errlen, "vm \"%s\": interface %u: %s", vm->name, index, why);
	if (nic->switch_name[0] != '\0' &&
	    vm_check_name("switch", nic->switch_name, why, sizeof(why)) == -1)
		return fail(err, errlen, "vm \"%s\": interface %u: %s", vm->name, index, why);
	if (nic->flags & ~VM_NIC_FLAGS)
		return fail(err, errlen, "vm \"%s\": interface %u: unknown flags %#x", vm->name,
			    index, nic->flags);
	if ((nic->flags & VM_NIC_LOCAL) && nic->switch_name[0] != '\0')
		return fail(err, errlen, "vm \"%s\": interface %u: a local interface cannot be "
			    "on a switch", vm->name, index);
	return 0;
}

int
vm_params_check_received(struct vm_params *vm, char *err, size_t errlen)
{
	TERMINATE(vm->name);
	TERMINATE(vm->template_name);
	TERMINATE(vm->kernel);
	TERMINATE(vm->initrd);
	TERMINATE(vm->cmdline);
	TERMINATE(vm->cdrom);
	for (size_t i = 0; i < VM_MAX_DISKS; i++)
		TERMINATE(vm->disks[i].path);
	for (size_t i = 0; i < VM_MAX_NICS; i++) {
		TERMINATE(vm->nics[i].ifname);
		TERMINATE(vm->nics[i].switch_name);
		TERMINATE(vm->nics[i].group);
	}
	if (vm_check_name("vm", vm->name, err, errlen) == -1)
		return -1;
	if (vm->ndisks > VM_MAX_DISKS || vm->nnics > VM_MAX_NICS ||
	    vm->min_nics > VM_MAX_NICS)
		return fail(err, errlen, "vm \"%s\": too many disks or interfaces", vm->name);
	if (vm->cpus < 1 || vm->cpus > VM_MAX_CPUS)
		return fail(err, errlen, "vm \"%s\": cpus %u is out of range (1 to %d)",
			    vm->name, vm->cpus, VM_MAX_CPUS);
	if (vm->memory < VM_MEMORY_MINIMUM || vm->memory > VM_MEMORY_CEILING ||
	    vm->memory % VM_MEMORY_ALIGN != 0)
		return fail(err, errlen, "vm \"%s\": memory %llu is out of range", vm->name,
			    (unsigned long long)vm->memory);
	if (vm->boot_device > VM_BOOT_NET)
		return fail(err, errlen, "vm \"%s\": unknown boot device %u", vm->name,
			    vm->boot_device);
	for (uint32_t i = 0; i < vm->ndisks; i++)
		if (vm->disks[i].format > VM_DISK_QCOW2)
			return fail(err, errlen, "vm \"%s\": disk %s: unknown format %u",
				    vm->name, vm->disks[i].path, vm->disks[i].format);
	for (uint32_t i = 0; i < vm->nnics; i++)
		if (check_received_nic(vm, i, err, errlen) == -1)
			return -1;
	if (vm->allow & ~(VM_ALLOW_CATEGORIES | VM_INSTANCE_OWNER_GROUP))
		return fail(err, errlen, "vm \"%s\": unknown allow instance bits %#x", vm->name,
			    vm->allow);
	return 0;
}

int
vm_check_request_nics(const struct vm_params *vm, char *err, size_t errlen)
{
	for (uint32_t i = 0; i < vm->nnics && i < VM_MAX_NICS; i++) {
		if (vm->nics[i].ifname[0] != '\0')
			return fail(err, errlen,
				    "vm \"%s\": interface %u: a start request cannot name the tap "
				    "(\"%s\"): vmd names its own, or vm.conf does",
				    vm->name, i, vm->nics[i].ifname);
		if (vm->nics[i].group[0] != '\0')
			return fail(err, errlen,
				    "vm \"%s\": interface %u: a start request cannot set a group "
				    "(\"%s\"): only vm.conf does",
				    vm->name, i, vm->nics[i].group);
	}
	return 0;
}

static const char *
limit_item_name(uint32_t item)
{
	switch (item) {
	case VMD_LIMIT_VMS: return "vms";
	case VMD_LIMIT_MEMORY: return "memory";
	case VMD_LIMIT_CPUS: return "cpus";
	}
	return "?";
}

/* memory takes text (a size), vms and cpus take value. */
int
vm_set_user_limit(struct vmd_user_limit *limit, uint32_t item, long long value,
		  const char *text, char *err, size_t errlen)
{
	uint64_t bytes;

	if (limit->set & item)
		return fail(err, errlen, "limit %s is given twice", limit_item_name(item));
	switch (item) {
	case VMD_LIMIT_VMS:
		if (value < 0 || value > VMD_MAX_VMS)
			return fail(err, errlen, "limit vms %lld is out of range (0 to %d)", value,
				    VMD_MAX_VMS);
		limit->vms = (uint32_t)value;
		break;
	case VMD_LIMIT_CPUS:
		if (value < 0 || value > VMD_LIMIT_CPUS_MAX)
			return fail(err, errlen, "limit cpus %lld is out of range (0 to %d)", value,
				    VMD_LIMIT_CPUS_MAX);
		limit->cpus = (uint32_t)value;
		break;
	case VMD_LIMIT_MEMORY:
		if (vm_parse_size(text, &bytes) == -1)
			return fail(err, errlen,
				    "limit memory \"%s\" is not a size (such as 512M or 16G)", text);
		if (bytes > VMD_MAX_VMS * VM_MEMORY_CEILING)
			return fail(err, errlen, "limit memory %s is above the 1024T maximum", text);
		limit->memory = bytes;
		break;
	default:
		return fail(err, errlen, "unknown limit %#x", item);
	}
	limit->set |= item;
	return 0;
}

/* Takes what from says over to. */
static void
overlay_limit(struct vmd_user_limit *to, const struct vmd_user_limit *from)
{
	if (from->set & VMD_LIMIT_VMS)
		to->vms = from->vms;
	if (from->set & VMD_LIMIT_CPUS)
		to->cpus = from->cpus;
	if (from->set & VMD_LIMIT_MEMORY)
		to->memory = from->memory;
}

struct vmd_user_limit
vmd_user_limit_for(const struct vmd_globals *g, uint32_t uid)
{
	struct vmd_user_limit limit = { uid, 0, VMD_LIMIT_VMS_DEFAULT, VMD_LIMIT_CPUS_DEFAULT,
					VMD_LIMIT_MEMORY_DEFAULT };

	overlay_limit(&limit, &g->user_limit);
	for (uint32_t i = 0; i < g->nuser_limits && i < VMD_MAX_USER_LIMITS; i++)
		if (g->user_limits[i].uid == uid)
			overlay_limit(&limit, &g->user_limits[i]);
	return limit;
}

int
vmd_check_user_limit(const struct vmd_user_limit *limit, const struct vmd_usage *used,
		     const struct vmd_usage *more, const char *user, char *err, size_t errlen)
{
	char have[32], add[32], max[32];

	if ((uint64_t)used->vms + more->vms > limit->vms)
		return fail(err, errlen, "user %s already runs %u VM%s (limit %u)", user, used->vms,
			    used->vms == 1 ? "" : "s", limit->vms);
	if ((uint64_t)used->cpus + more->cpus > limit->cpus)
		return fail(err, errlen,
			    "user %s already runs %u vCPU%s; %u more is over the limit of %u", user,
			    used->cpus, used->cpus == 1 ? "" : "s", more->cpus, limit->cpus);
	if (used->memory > limit->memory || more->memory > limit->memory - used->memory) {
		vm_format_size(used->memory, have, sizeof(have));
		vm_format_size(more->memory, add, sizeof(add));
		vm_format_size(limit->memory, max, sizeof(max));
		return fail(err, errlen,
			    "user %s already runs %s of memory; %s more is over the limit of %s",
			    user, have, add, max);
	}
	return 0;
}
