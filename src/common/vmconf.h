/*
 * The configuration data model shared by vmd, vmctl and the VM process.
 *
 * Every struct here is fixed-size and holds no pointers, so a VM's
 * configuration travels between processes as plain bytes.  vm.conf (parsed
 * by src/vmd/parse.y) and `vmctl start` options both fill a struct
 * vm_params through the same setters below, so both accept and reject the
 * same values with the same messages.
 */
#ifndef VMD_VMCONF_H
#define VMD_VMCONF_H

#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Limits (documented in vm.conf(5)). */
#define VM_NAME_MAX	    64	 /* VM and switch names, without the NUL */
#define VM_IFNAME_MAX	    16	 /* Linux IFNAMSIZ: 15 characters and the NUL */
#define VM_CMDLINE_MAX	    2048 /* x86 Linux COMMAND_LINE_SIZE, with the NUL */
#define VM_MAX_DISKS	    16
#define VM_MAX_NICS	    16
#define VM_MAX_CPUS	    254 /* one APIC id per vCPU below the broadcast id 255 */
#define VM_MEMORY_MINIMUM   (1ULL << 20) /* 1M */
#define VM_MEMORY_CEILING   (1ULL << 40) /* 1T: the hard cap, whatever the host */
#define VM_MEMORY_DEFAULT   (512ULL << 20)
#define VM_MEMORY_ALIGN	    (1ULL << 20) /* memory is rounded up to whole megabytes */
#define VMD_MAX_VMS	    1024
#define VMD_MAX_SWITCHES    256
#define VMD_STAGGER_MAX_PARALLEL 1024
#define VMD_STAGGER_MAX_DELAY	 86400

#define VM_ID_NONE ((uint32_t)-1) /* an owner uid or gid that is not set */

enum vm_boot_device {
	VM_BOOT_DEFAULT = 0, /* the kernel if one is set, else the first disk */
	VM_BOOT_DISK,
	VM_BOOT_CDROM,
	VM_BOOT_NET,
};

enum vm_disk_format {
	VM_DISK_AUTO = 0, /* qcow2 if the file starts with the qcow2 magic, else raw */
	VM_DISK_RAW,
	VM_DISK_QCOW2,
};

struct vm_disk {
	char path[PATH_MAX];
	uint32_t format; /* enum vm_disk_format */
	bool readonly;
};

/* struct vm_nic flags */
#define VM_NIC_LOCAL	0x01 /* point-to-point link to the host with DHCP */
#define VM_NIC_LLADDR	0x02 /* lladdr holds a fixed MAC; else vmd picks one */
#define VM_NIC_LOCKED	0x04 /* drop guest frames from any other source MAC */
#define VM_NIC_DOWN	0x08 /* leave the host side of the link down */

struct vm_nic {
	char ifname[VM_IFNAME_MAX];	    /* tap name; empty: vmd picks one */
	char switch_name[VM_NAME_MAX + 1];  /* empty: not on a switch */
	char group[VM_IFNAME_MAX];	    /* empty: no group */
	uint8_t lladdr[6];
	uint32_t flags;
};

struct vm_owner {
	uint32_t uid; /* VM_ID_NONE: not set */
	uint32_t gid; /* VM_ID_NONE: not set */
};

/*
 * What an instance may change of its template (`allow instance`), and what
 * a vm block or vmctl start set explicitly.  One bit per category.
 */
#define VM_ALLOW_BOOT	   0x01 /* boot/kernel, initrd, cmdline, boot device */
#define VM_ALLOW_CDROM	   0x02
#define VM_ALLOW_CPUS	   0x04
#define VM_ALLOW_DISK	   0x08
#define VM_ALLOW_INSTANCE  0x10 /* the instance may be a template in turn */
#define VM_ALLOW_INTERFACE 0x20
#define VM_ALLOW_MEMORY	   0x40
#define VM_ALLOW_OWNER	   0x80
#define VM_ALLOW_CATEGORIES 0xff
/*
 * Not a category: `instance owner group`.  The instances users create are
 * owned by their creator and also by the template's owner group, whose
 * members then control each other's instances.  Without it an instance is
 * its creator's alone.
 */
#define VM_INSTANCE_OWNER_GROUP 0x100

/* struct vm_params set: what was given explicitly (duplicates are errors). */
#define VM_SET_MEMORY	  0x0001
#define VM_SET_CPUS	  0x0002
#define VM_SET_KERNEL	  0x0004
#define VM_SET_INITRD	  0x0008
#define VM_SET_CMDLINE	  0x0010
#define VM_SET_BOOTDEV	  0x0020
#define VM_SET_DISKS	  0x0040
#define VM_SET_CDROM	  0x0080
#define VM_SET_NICS	  0x0100
#define VM_SET_INTERFACES 0x0200 /* `interfaces N` */
#define VM_SET_OWNER	  0x0400
#define VM_SET_ALLOW	  0x0800

struct vm_params {
	char name[VM_NAME_MAX + 1];
	char template_name[VM_NAME_MAX + 1]; /* non-empty: an instance of it */
	uint64_t memory;		     /* bytes, a multiple of 1M */
	uint32_t cpus;
	char kernel[PATH_MAX];
	char initrd[PATH_MAX];
	char cmdline[VM_CMDLINE_MAX];
	uint32_t boot_device; /* enum vm_boot_device */
	struct vm_disk disks[VM_MAX_DISKS];
	uint32_t ndisks;
	char cdrom[PATH_MAX];
	struct vm_nic nics[VM_MAX_NICS];
	uint32_t nnics;
	uint32_t min_nics; /* `interfaces N` */
	struct vm_owner owner;
	bool enabled; /* start it when vmd starts */
	uint32_t allow;	/* VM_ALLOW_* */
	struct vm_owner instance_owner; /* who may create instances */
	uint32_t set;	/* VM_SET_* */
};

/* struct vm_switch set */
#define VM_SWITCH_SET_IFNAME 0x01
#define VM_SWITCH_SET_GROUP  0x02

struct vm_switch {
	char name[VM_NAME_MAX + 1];
	char ifname[VM_IFNAME_MAX]; /* the Linux bridge; empty: vmd picks one */
	char group[VM_IFNAME_MAX];
	bool locked_lladdr;	    /* every port as if `locked lladdr` */
	bool down;
	bool enabled;
	uint32_t set;
};

/* struct vmd_globals set */
#define VMD_SET_PREFIX4 0x01
#define VMD_SET_INET6	0x02
#define VMD_SET_SOCKET	0x04
#define VMD_SET_STAGGER 0x08

/*
 * What one non-root user may run at once (`limit user`): the VMs she
 * started that are not stopped.  root is never limited.
 */
#define VMD_LIMIT_VMS	 0x01
#define VMD_LIMIT_MEMORY 0x02
#define VMD_LIMIT_CPUS	 0x04

struct vmd_user_limit {
	uint32_t uid;	 /* VM_ID_NONE: the default for every user */
	uint32_t set;	 /* VMD_LIMIT_*: what this entry says; the rest is the default's */
	uint32_t vms;
	uint32_t cpus;
	uint64_t memory; /* bytes */
};

#define VMD_LIMIT_VMS_DEFAULT	 8
#define VMD_LIMIT_MEMORY_DEFAULT (16ULL << 30)
#define VMD_LIMIT_CPUS_DEFAULT	 32
#define VMD_MAX_USER_LIMITS	 64 /* `limit user NAME` statements */
#define VMD_LIMIT_CPUS_MAX	 (VMD_MAX_VMS * VM_MAX_CPUS)

/* What a user runs now, or what a VM would add. */
struct vmd_usage {
	uint32_t vms;
	uint32_t cpus;
	uint64_t memory;
};

struct vmd_globals {
	struct in_addr prefix4; /* local interfaces take /31s from it */
	uint32_t prefix4_len;
	bool inet6;		/* local interfaces get IPv6 too */
	struct in6_addr prefix6;
	uint32_t prefix6_len;
	struct vm_owner socket_owner;
	uint32_t stagger_parallel; /* 0: the number of host CPUs */
	uint32_t stagger_delay;	   /* seconds */
	struct vmd_user_limit user_limit;	/* the default; uid VM_ID_NONE */
	struct vmd_user_limit user_limits[VMD_MAX_USER_LIMITS]; /* per user */
	uint32_t nuser_limits;
	uint32_t uid_first;	   /* uid range: vmm's and the VMs' identities (vmd.8) */
	uint32_t uid_count;	   /* a power of two; uid_first a multiple of it */
	uint32_t set;
};

#define VMD_UID_FIRST_DEFAULT 0x7ee00000u
#define VMD_UID_COUNT_DEFAULT 65536u

#define VMD_PREFIX4_DEFAULT	"100.64.0.0"
#define VMD_PREFIX4_LEN_DEFAULT 10
#define VMD_PREFIX6_DEFAULT	"fd00::"
#define VMD_PREFIX6_LEN_DEFAULT 8
#define VMD_STAGGER_DELAY_DEFAULT 30

/*
 * Defaults and setters.  Each setter checks its value and returns 0, or -1
 * with a message naming the value and the cause in err (no file or line:
 * the caller adds its own context).
 */
void vm_params_init(struct vm_params *, const char *name);
void vm_switch_init(struct vm_switch *, const char *name);
void vmd_globals_init(struct vmd_globals *);

int vm_check_name(const char *what, const char *name, char *err, size_t errlen);
int vm_parse_size(const char *text, uint64_t *bytes);
uint64_t vm_host_memory_limit(void);
int vm_set_memory(struct vm_params *, const char *text, char *err, size_t errlen);
int vm_set_memory_bytes(struct vm_params *, uint64_t, const char *text, char *err,
			size_t errlen);
int vm_set_cpus(struct vm_params *, long long cpus, char *err, size_t errlen);
int vm_set_path(char *dst, const char *what, const char *path, char *err, size_t errlen);
int vm_set_kernel(struct vm_params *, const char *path, char *err, size_t errlen);
int vm_set_initrd(struct vm_params *, const char *path, char *err, size_t errlen);
int vm_set_cdrom(struct vm_params *, const char *path, char *err, size_t errlen);
int vm_set_cmdline(struct vm_params *, const char *cmdline, char *err, size_t errlen);
int vm_set_boot_device(struct vm_params *, const char *device, char *err, size_t errlen);
int vm_add_disk(struct vm_params *, const char *path, const char *format, bool readonly,
		char *err, size_t errlen);
int vm_add_nic(struct vm_params *, const struct vm_nic *, char *err, size_t errlen);
int vm_set_min_nics(struct vm_params *, long long count, char *err, size_t errlen);
int vm_check_ifname(const char *what, const char *name, char *err, size_t errlen);
int vm_parse_lladdr(const char *text, uint8_t lladdr[6], char *err, size_t errlen);
int vm_parse_owner(const char *text, struct vm_owner *, char *err, size_t errlen);
int vm_parse_prefix4(const char *text, struct in_addr *, uint32_t *len, char *err,
		     size_t errlen);
int vm_parse_prefix6(const char *text, struct in6_addr *, uint32_t *len, char *err,
		     size_t errlen);

/*
 * For a struct vm_params that arrived from another process: terminates
 * every string and checks counts and ranges, interface, switch and group
 * names included.  Returns 0 or -1 with err.
 */
int vm_params_check_received(struct vm_params *, char *err, size_t errlen);

/*
 * The interfaces of a start request: vmctl asks for interfaces on switches,
 * local ones or a count, never for a tap name or a device group (those only
 * vm.conf sets: vmd names its own taps, and a group can put an interface
 * under the host firewall's rules for that group).  Returns 0 or -1 with err.
 */
int vm_check_request_nics(const struct vm_params *, char *err, size_t errlen);

/*
 * `limit user`: a setter for one item of a limit statement, and the limit
 * that holds for uid (its own entry over the default; items neither sets
 * take the built-in defaults).
 */
int vm_set_user_limit(struct vmd_user_limit *, uint32_t item, long long value,
		      const char *text, char *err, size_t errlen);
struct vmd_user_limit vmd_user_limit_for(const struct vmd_globals *, uint32_t uid);
/*
 * Whether a user who runs `used` may start a VM that needs `more` under
 * limit.  Returns 0, or -1 with the reason ("user alice already runs 8 VMs
 * (limit 8)") in err; user is the name for the message.
 */
int vmd_check_user_limit(const struct vmd_user_limit *, const struct vmd_usage *used,
			 const struct vmd_usage *more, const char *user, char *err,
			 size_t errlen);

/* Pads the interfaces up to `interfaces N`. */
void vm_finish_nics(struct vm_params *);

/*
 * Makes inst, which holds what an instance block or `vmctl start -t` set,
 * into the full configuration of an instance of tmpl: it inherits what it
 * did not set, and may differ from tmpl only where tmpl allows it.
 */
int vm_instantiate(const struct vm_params *tmpl, struct vm_params *inst, char *err,
		   size_t errlen);

/* Names for printing. */
const char *vm_boot_device_name(uint32_t);
const char *vm_disk_format_name(uint32_t);
void vm_format_size(uint64_t bytes, char *buf, size_t len);
void vm_format_owner(const struct vm_owner *, char *buf, size_t len);

#endif
