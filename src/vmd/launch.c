/*
 * Starting a VM: the parent opens everything the VM uses (/dev/kvm, a pty,
 * the kernel, initrd, disks, CD-ROM) and hands the descriptors to vmm, which
 * passes them to the new VM process.  Nothing below the parent opens a path.
 * Paths a non-root user gave are opened with that user's rights.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/safe_open.h"
#include "disk/disk.h"
#include "vm/firmware.h"
#include "vm/vm.h"
#include "vmd/vmd.h"

/* Descriptors collected for one launch, closed once vmm has them. */
struct launch {
	struct vmd_env *env;
	struct vmd_vm *vm;
	char *err;
	size_t errlen;
};

static bool
by_user(const struct vmd_vm *vm, uint32_t set_bit)
{
	return vm->opener.uid != 0 && (vm->user_set & set_bit);
}

static bool
has_owner(const struct vmd_vm *vm)
{
	return vm->params.owner.uid != VM_ID_NONE || vm->params.owner.gid != VM_ID_NONE;
}

/*
 * Whose rights open a file of the VM (vmd.8, SECURITY, "Opening files"):
 * a path a non-root user gave to vmctl start, hers; every other path of a
 * VM with an owner, the owner's (a user with her own groups; a group alone,
 * "nobody" with only that group); root's for a VM without an owner.
 */
static void
opening_identity(const struct vmd_vm *vm, uint32_t set_bit, struct open_identity *id)
{
	const struct vm_owner *owner = &vm->params.owner;

	if (by_user(vm, set_bit))
		identity_user(id, vm->opener.uid, vm->opener.gid);
	else if (owner->uid != VM_ID_NONE)
		identity_user(id, owner->uid, owner->gid != VM_ID_NONE ? owner->gid : SAFE_OPEN_NOBODY);
	else if (owner->gid != VM_ID_NONE)
		identity_group(id, owner->gid);
	else
		identity_root(id);
}

/* Block devices only for a VM that root configured: no owner, opened as root. */
static bool
devices_allowed(const struct vmd_vm *vm, const struct open_identity *id)
{
	return id->uid == 0 && !has_owner(vm);
}

static int
launch_error(struct launch *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
launch_error(struct launch *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->err, l->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int
send_fd(struct launch *l, int fd, uint32_t kind, uint32_t index, uint32_t layer,
	uint32_t format, bool writable, const char *name)
{
	struct msg_vm_fd m = { l->vm->id, kind, index, layer, format, writable, "" };

	snprintf(m.name, sizeof(m.name), "%s", name);
	vmd_send_child(l->env, &l->env->vmm, MSG_VM_FD, l->vm->id, &m, sizeof(m), &fd, 1);
	close(fd);
	return 0;
}

/* Opens a file of the VM read-only, with the rights opening_identity() names. */
static int
open_file(struct launch *l, const char *what, const char *path, uint32_t set_bit)
{
	char cause[SAFE_OPEN_CAUSE_MAX];
	struct open_identity id;
	struct open_saved saved;
	unsigned kinds;
	int fd;

	opening_identity(l->vm, set_bit, &id);
	kinds = SAFE_OPEN_REGULAR | (devices_allowed(l->vm, &id) ? SAFE_OPEN_BLOCK : 0);
	if (identity_enter(&id, &saved) < 0)
		return launch_error(l, "%s %s: cannot take on the rights of uid %u: %s", what, path,
				    (unsigned)id.uid, strerror(errno));
	fd = safe_open(path, O_RDONLY, kinds, cause, sizeof(cause));
	identity_leave(&saved);
	if (fd < 0)
		launch_error(l, "%s %s: %s", what, path, cause);
	return fd;
}

/*
 * The console: a pty in raw mode; the VM holds both sides, so it stays up.
 * The parent keeps a duplicate of the slave side until the VM exits: vmctl
 * console gets a copy of that descriptor, never the path reopened (once the
 * VM is gone, /dev/pts/N may be another user's terminal), and holding it
 * keeps the number from being reused while the VM is registered.
 */
static int
open_console(struct launch *l)
{
	struct termios tio;
	int master, slave;
	const char *name;

	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
	    (name = ptsname(master)) == NULL) {
		if (master >= 0)
			close(master);
		return launch_error(l, "cannot open a pty: %s", strerror(errno));
	}
	snprintf(l->vm->tty, sizeof(l->vm->tty), "%s", name);
	slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0) {
		close(master);
		return launch_error(l, "%s: %s", name, strerror(errno));
	}
	if (tcgetattr(slave, &tio) == 0) {
		cfmakeraw(&tio);
		tcsetattr(slave, TCSANOW, &tio);
	}
	/* The owner may use the tty directly too. */
	if (l->vm->params.owner.uid != VM_ID_NONE &&
	    fchown(slave, l->vm->params.owner.uid, (gid_t)-1) < 0)
		log_warn("%s: cannot give it to uid %u", name, l->vm->params.owner.uid);
	if (l->vm->console_fd >= 0)
		close(l->vm->console_fd); /* a reboot's new pty replaces the old one */
	l->vm->console_fd = fcntl(slave, F_DUPFD_CLOEXEC, 0);
	if (l->vm->console_fd < 0)
		log_warn("%s: cannot keep a copy for vmctl console", name);
	send_fd(l, master, VM_FD_CONSOLE, 0, 0, 0, true, name);
	send_fd(l, slave, VM_FD_CONSOLE, 1, 0, 0, true, name);
	return 0;
}

/* A block device may have several nodes: the device decides, not the node. */
static bool
same_file(const struct stat *a, const struct stat *b)
{
	if (S_ISBLK(a->st_mode) && S_ISBLK(b->st_mode))
		return a->st_rdev == b->st_rdev;
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Whether a running VM of this daemon (this one included) writes the file fd is open on. */
static bool
written_by_a_vm(struct vmd_env *env, int fd)
{
	struct stat st, other;
	struct vmd_vm *vm;

	if (fstat(fd, &st) < 0)
		return false;
	TAILQ_FOREACH(vm, &env->vms, entry)
		for (int i = 0; i < vm->nlocks; i++)
			if (fstat(vm->locks[i], &other) == 0 && same_file(&st, &other))
				return true;
	return false;
}

/*
 * Only a process that may write an image keeps a VM from using it
 * (safe_open.h, write_lock_take()): this daemon's own writers by the
 * descriptors it keeps in vm->locks, which no reader's lock can hide;
 * other programs by the OFD write lock.
 */
static int
lock_for_writing(struct launch *l, int fd, const char *path)
{
	int keep;

	if (written_by_a_vm(l->env, fd))
		return launch_error(l, "disk %s: in use by another VM (locked for writing)", path);
	switch (write_lock_take(fd)) {
	case WRITE_LOCK_TAKEN:
		break;
	case WRITE_LOCK_READERS:
		log_warnx("disk %s: a reader holds a lock on it; used without a write lock", path);
		break;
	case WRITE_LOCK_IN_USE:
		return launch_error(l, "disk %s: in use by another VM (locked for writing)", path);
	case WRITE_LOCK_ERROR:
		return launch_error(l, "disk %s: cannot lock it: %s", path, strerror(errno));
	}
	if ((keep = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return launch_error(l, "disk %s: %s", path, strerror(errno));
	l->vm->locks[l->vm->nlocks++] = keep;
	return 0;
}

/* A disk and its backing files, each opened as opening_identity() says. */
static int
open_disk(struct launch *l, uint32_t index)
{
	const struct vm_disk *d = &l->vm->params.disks[index];
	struct disk_chain chain;
	char err[DISK_ERROR_MAX];
	struct open_identity id;
	struct open_saved saved;
	int flags, rc;

	opening_identity(l->vm, VM_SET_DISKS, &id);
	flags = (d->readonly ? 0 : DISK_OPEN_WRITABLE) | (devices_allowed(l->vm, &id) ? 0 : DISK_OPEN_NO_DEVICES);
	if (identity_enter(&id, &saved) < 0)
		return launch_error(l, "disk %s: cannot take on the rights of uid %u: %s", d->path,
				    (unsigned)id.uid, strerror(errno));
	rc = disk_open_chain(d->path, (enum disk_format)d->format, flags, &chain, err);
	identity_leave(&saved);
	if (rc < 0)
		return launch_error(l, "%s", err);
	if (chain.writable && lock_for_writing(l, chain.layer[0].fd, d->path) < 0) {
		disk_chain_close(&chain);
		return -1;
	}
	for (int i = 0; i < chain.count; i++)
		send_fd(l, chain.layer[i].fd, VM_FD_DISK, index, (uint32_t)i,
			chain.layer[i].format, i == 0 && chain.writable, chain.layer[i].name);
	return 0;
}

/*
 * A tap for each interface, from priv, already on its switch's bridge or
 * with the host's address of a local interface: a blocking round trip,
 * since priv answers only the parent and only this.  The VM process learns
 * the addresses and locks that are its business in MSG_VM_NIC.
 */
static int
open_tap(struct launch *l, uint32_t index)
{
	struct msg_priv_tap tap;
	struct msg_vm_nic vnic;
	char asked[VM_IFNAME_MAX];
	struct pollfd pfd = { l->env->priv.fd, POLLIN, 0 };
	static struct msg_buf buf;
	struct msg m;
	int rc, fd;

	if (vmd_tap_request(l->env, l->vm, index, &tap, &vnic, l->err, l->errlen) < 0)
		return -1;
	snprintf(asked, sizeof(asked), "%s", tap.ifname);
	vmd_send_child(l->env, &l->env->priv, MSG_PRIV_TAP, l->vm->id, &tap, sizeof(tap), NULL, 0);
	if (vmd_flush_child(&l->env->priv, 5000) < 0)
		return launch_error(l, "interface %s: priv does not read its socket", tap.ifname);
	/* A refusal of an earlier switch or attach request may come first. */
	while (((rc = msg_recv(pfd.fd, &m, &buf)) < 0 && errno == EAGAIN) ||
	       (rc > 0 && m.hdr.type == MSG_PRIV_REFUSED)) {
		if (rc > 0) {
			vmd_priv_refused(&m);
			continue;
		}
		if (poll(&pfd, 1, 5000) <= 0)
			return launch_error(l, "interface %s: no answer from priv", tap.ifname);
	}
	if (rc <= 0 || msg_read_priv_tap(&m, &tap) < 0)
		fatalx("priv: malformed answer");
	if (m.hdr.peer_id != l->vm->id || strcmp(tap.ifname, asked) != 0) {
		/* The late answer of a launch that gave up: never another VM's tap. */
		log_warnx("interface %s: priv answered for %s: closed", asked, tap.ifname);
		msg_close_fds(&m);
		return launch_error(l, "interface %s: priv answered another request", asked);
	}
	if (tap.error != 0 || m.nfds != 1) {
		msg_close_fds(&m);
		if (tap.reason[0] != '\0')
			return launch_error(l, "interface %s: %s", tap.ifname, tap.reason);
		return launch_error(l, "interface %s: %s", tap.ifname, strerror(tap.error));
	}
	fd = msg_take_fd(&m, 0);
	send_fd(l, fd, VM_FD_TAP, index, 0, 0, true, tap.ifname);
	vmd_send_child(l->env, &l->env->vmm, MSG_VM_NIC, l->vm->id, &vnic, sizeof(vnic), NULL, 0);
	return 0;
}

static void
release_locks(struct vmd_vm *vm)
{
	for (int i = 0; i < vm->nlocks; i++)
		close(vm->locks[i]);
	vm->nlocks = 0;
}

/* What can be refused before anything is opened: boot devices the VM lacks, missing switches. */
static int
launch_check(struct launch *l)
{
	const struct vm_params *p = &l->vm->params;

	if (p->boot_device == VM_BOOT_NET && p->nnics == 0)
		return launch_error(l, "boot device net: the VM has no network interface (-n, -i, -L or `interface')");
	if (p->boot_device == VM_BOOT_CDROM && p->cdrom[0] == '\0')
		return launch_error(l, "boot device cdrom: the VM has no CD-ROM image (-r or `cdrom' in vm.conf)");
	for (uint32_t i = 0; i < p->nnics; i++)
		if (p->nics[i].switch_name[0] != '\0' &&
		    vmd_nic_switch(l->env, &p->nics[i], i, l->err, l->errlen) == NULL)
			return -1;
	return 0;
}

/* Whether fd holds a Linux bzImage (the boot protocol's "HdrS" at 0x202), not a BIOS image. */
static bool
is_linux_kernel(int fd)
{
	char magic[4];

	return pread(fd, magic, sizeof(magic), 0x202) == (ssize_t)sizeof(magic) && memcmp(magic, "HdrS", 4) == 0;
}

/*
 * The file the VM boots: its kernel (a bzImage, or a BIOS image), or else
 * the default firmware, which then boots from the disks or the CD-ROM.
 */
static int
open_boot_file(struct launch *l)
{
	const struct vm_params *p = &l->vm->params;
	int fd;

	if (p->kernel[0] == '\0') {
		fd = open(FIRMWARE_DEFAULT_PATH, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			launch_error(l, "no kernel, and no firmware to boot from a disk: %s: %s (Debian's seabios package"
					" has it)", FIRMWARE_DEFAULT_PATH, strerror(errno));
		return fd;
	}
	if ((fd = open_file(l, "kernel", p->kernel, VM_SET_KERNEL)) < 0)
		return -1;
	if (p->boot_device != VM_BOOT_DEFAULT && is_linux_kernel(fd)) {
		close(fd);
		return launch_error(l, "boot device %s: only firmware boots from a device, and %s is a Linux kernel"
				       " booted directly", vm_boot_device_name(p->boot_device), p->kernel);
	}
	return fd;
}

/* The firmware's network boot ROM, for boot device net; -1 when not needed. */
static int
open_netboot_rom(struct launch *l, int *fd)
{
	*fd = -1;
	if (l->vm->params.boot_device != VM_BOOT_NET)
		return 0;
	if ((*fd = open(FIRMWARE_NETBOOT_ROM_PATH, O_RDONLY | O_CLOEXEC)) < 0)
		return launch_error(l, "boot device net: %s: %s (Debian's ipxe-qemu package has it)",
				    FIRMWARE_NETBOOT_ROM_PATH, strerror(errno));
	return 0;
}

/* What the VM process needs before its devices: opened together, so that a failure sends nothing. */
struct boot_files {
	int kvm, kernel, initrd, cdrom, netboot;
};

static void
close_boot_files(struct boot_files *f)
{
	int *fds[] = { &f->kvm, &f->kernel, &f->initrd, &f->cdrom, &f->netboot };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}

static int
open_boot_files(struct launch *l, struct boot_files *f)
{
	const struct vm_params *p = &l->vm->params;

	*f = (struct boot_files){ -1, -1, -1, -1, -1 };
	if ((f->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC)) < 0)
		return launch_error(l, "/dev/kvm: %s", strerror(errno));
	if ((f->kernel = open_boot_file(l)) < 0 ||
	    (p->initrd[0] && (f->initrd = open_file(l, "initrd", p->initrd, VM_SET_INITRD)) < 0) ||
	    (p->cdrom[0] && (f->cdrom = open_file(l, "cdrom", p->cdrom, VM_SET_CDROM)) < 0) ||
	    open_netboot_rom(l, &f->netboot) < 0) {
		close_boot_files(f);
		return -1;
	}
	return 0;
}

/* send_fd closes each descriptor once vmm has it. */
static void
send_boot_files(struct launch *l, struct boot_files *f)
{
	const struct vm_params *p = &l->vm->params;

	send_fd(l, f->kvm, VM_FD_KVM, 0, 0, 0, true, "/dev/kvm");
	send_fd(l, f->kernel, VM_FD_KERNEL, 0, 0, 0, false, p->kernel[0] ? p->kernel : FIRMWARE_DEFAULT_PATH);
	if (f->initrd >= 0)
		send_fd(l, f->initrd, VM_FD_INITRD, 0, 0, 0, false, p->initrd);
	if (f->cdrom >= 0)
		send_fd(l, f->cdrom, VM_FD_CDROM, 0, 0, 0, false, p->cdrom);
	if (f->netboot >= 0)
		send_fd(l, f->netboot, VM_FD_NETBOOT, 0, 0, 0, false, FIRMWARE_NETBOOT_ROM_PATH);
}

int
vm_launch(struct vmd_env *env, struct vmd_vm *vm, char *err, size_t errlen)
{
	struct launch l = { env, vm, err, errlen };
	struct msg_vm_start start = { vm->id, vm->params };
	struct msg_vm_event go = { vm->id, 0, 0 };
	const struct vm_params *p = &vm->params;
	struct boot_files files;

	if (launch_check(&l) < 0 || open_boot_files(&l, &files) < 0)
		return -1;
	/* From here on, every descriptor goes to vmm as soon as it is open. */
	vmd_send_child(env, &env->vmm, MSG_VMM_START, vm->id, &start, sizeof(start), NULL, 0);
	vm->state = VM_STATE_STARTING;
	send_boot_files(&l, &files);
	if (open_console(&l) < 0)
		goto abort;
	for (uint32_t i = 0; i < p->ndisks; i++)
		if (open_disk(&l, i) < 0)
			goto abort;
	for (uint32_t i = 0; i < p->nnics; i++)
		if (open_tap(&l, i) < 0)
			goto abort;
	vmd_send_child(env, &env->vmm, MSG_VMM_GO, vm->id, &go, sizeof(go), NULL, 0);
	return 0;
abort:
	/* The VM process exists without its GO: stop it; its exit cleans up. */
	release_locks(vm);
	go.status = 1;
	vmd_send_child(env, &env->vmm, MSG_VMM_STOP, vm->id, &go, sizeof(go), NULL, 0);
	vm->state = VM_STATE_STOPPING;
	return -1;
}

static void
notify_waiters(struct vmd_env *env, struct vmd_vm *vm, const char *how)
{
	for (int i = 0; i < vm->nwaiters; i++)
		vmd_reply(env, vm->waiters[i].peer_id, 0, vm->id, "vm %s: %s", vm->params.name,
			  vm->waiters[i].stop_request ? "stopped" : how);
	vm->nwaiters = 0;
}

static void
describe_exit(int status, char *buf, size_t len)
{
	if ((WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) ||
	    (WIFEXITED(status) && WEXITSTATUS(status) == VM_EXIT_FILTER))
		snprintf(buf, len, "killed by the system call filter (its log names the call)");
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
	else if (WEXITSTATUS(status) == VM_EXIT_POWEROFF)
		snprintf(buf, len, "powered off");
	else if (WEXITSTATUS(status) == VM_EXIT_REBOOT)
		snprintf(buf, len, "rebooted");
	else
		snprintf(buf, len, "failed (exit status %d)", WEXITSTATUS(status));
}

/*
 * vmctl start -B holds for one boot, as on OpenBSD: an installer booted
 * from the CD-ROM reboots into the installed disk.  vm.conf's boot device
 * (or the default) applies again.
 */
static void
restore_boot_device(struct vmd_env *env, struct vmd_vm *vm)
{
	const struct vm_params *p;

	if (!vm->boot_once)
		return;
	p = vm->from_config ? config_find_vm(&env->conf, vm->params.name) : NULL;
	vm->params.boot_device = p ? p->boot_device : VM_BOOT_DEFAULT;
	vm->boot_once = false;
}

void
vm_exited(struct vmd_env *env, struct vmd_vm *vm, int status)
{
	bool was_stopping = vm->state == VM_STATE_STOPPING;
	const struct vm_params *p;
	char how[96], err[512];

	describe_exit(status, how, sizeof(how));
	release_locks(vm);
	if (vm->stop_timer)
		evtimer_del(vm->stop_timer);
	log_info("vm %s: process %d %s", vm->params.name, (int)vm->pid, how);
	vm->pid = 0;
	vm->tty[0] = '\0';
	if (vm->console_fd >= 0) {
		close(vm->console_fd);
		vm->console_fd = -1;
	}
	vm->state = VM_STATE_STOPPED;
	if (vm->pause_peer != 0)
		vmd_reply(env, vm->pause_peer, ESRCH, vm->id, "%s: stopped", vm->params.name);
	vm->pause_peer = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == VM_EXIT_REBOOT && !was_stopping &&
	    !env->shutting_down) {
		restore_boot_device(env, vm);
		if (!vm_reboot_allowed(vm, time(NULL))) {
			log_warnx("vm %s: rebooted more than %d times within %d seconds: stopped",
				  vm->params.name, VMD_REBOOT_LIMIT, VMD_REBOOT_WINDOW);
		} else if (vm_launch(env, vm, err, sizeof(err)) < 0) {
			log_warnx("vm %s: cannot restart: %s", vm->params.name, err);
		} else {
			return;
		}
	}
	notify_waiters(env, vm, how);
	/* Options given to vmctl start last one run; vm.conf has the rest. */
	if (vm->from_config && !vm->removed &&
	    (p = config_find_vm(&env->conf, vm->params.name)) != NULL)
		vm->params = *p;
	if (!vm->from_config || vm->removed)
		vm_remove(env, vm);
	vmd_check_shutdown(env);
}

/* A graceful stop that did not happen: reported, not turned into a kill. */
static void
on_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct vmd_vm *vm = arg;
	struct vmd_env *env = vm->env;
	int kept = 0;

	if (vm->state != VM_STATE_STOPPING)
		return;
	if (env->shutting_down) {
		log_warnx("vm %s: did not stop within %d seconds: killing it", vm->params.name,
			  env->stop_timeout);
		vm_request_stop(env, vm, true);
		return;
	}
	log_warnx("vm %s: did not stop within %d seconds", vm->params.name, env->stop_timeout);
	vm->state = VM_STATE_RUNNING;
	for (int i = 0; i < vm->nwaiters; i++) {
		if (vm->waiters[i].stop_request)
			vmd_reply(env, vm->waiters[i].peer_id, ETIMEDOUT, vm->id,
				  "vm %s: did not stop within %d seconds (stop -f kills it)",
				  vm->params.name, env->stop_timeout);
		else
			vm->waiters[kept++] = vm->waiters[i];
	}
	vm->nwaiters = kept;
}

void
vm_request_stop(struct vmd_env *env, struct vmd_vm *vm, bool force)
{
	struct msg_vm_event stop = { vm->id, vm->pid, force ? 1 : 0 };
	struct timeval timeout = { env->stop_timeout, 0 };

	if (vm->state == VM_STATE_WAITING || vm->state == VM_STATE_STOPPED) {
		vm->state = VM_STATE_STOPPED;
		return;
	}
	if (vm->state == VM_STATE_PAUSED && !force)
		vmd_send_child(env, &env->vmm, MSG_VMM_UNPAUSE, vm->id, &stop, sizeof(stop),
			       NULL, 0);
	vmd_send_child(env, &env->vmm, MSG_VMM_STOP, vm->id, &stop, sizeof(stop), NULL, 0);
	vm->state = VM_STATE_STOPPING;
	if (force)
		return;
	if (vm->stop_timer == NULL)
		vm->stop_timer = evtimer_new(env->base, on_stop_timeout, vm);
	if (vm->stop_timer)
		evtimer_add(vm->stop_timer, &timeout);
}

static void
on_stagger(evutil_socket_t fd, short what, void *arg)
{
	vm_stagger_start(arg);
}

/*
 * `staggered start parallel N delay S`: starts the next N waiting VMs now
 * and the ones after them S seconds later.
 */
void
vm_stagger_start(struct vmd_env *env)
{
	const struct vmd_globals *g = &env->conf.globals;
	long parallel = g->stagger_parallel ? (long)g->stagger_parallel : sysconf(_SC_NPROCESSORS_ONLN);
	struct timeval delay = { g->set & VMD_SET_STAGGER ? g->stagger_delay : VMD_STAGGER_DELAY_DEFAULT, 0 };
	struct vmd_vm *vm;
	char err[512];
	long started = 0;
	bool more = false;

	if (parallel < 1)
		parallel = 1;
	TAILQ_FOREACH(vm, &env->vms, entry) {
		if (vm->state != VM_STATE_WAITING)
			continue;
		if (started == parallel) {
			more = true;
			break;
		}
		vm->state = VM_STATE_STOPPED;
		if (vm_launch(env, vm, err, sizeof(err)) < 0)
			log_warnx("vm %s: cannot start: %s", vm->params.name, err);
		else
			log_info("vm %s: started", vm->params.name);
		started++;
	}
	if (!more)
		return;
	if (env->stagger_timer == NULL)
		env->stagger_timer = evtimer_new(env->base, on_stagger, env);
	if (env->stagger_timer)
		evtimer_add(env->stagger_timer, &delay);
}
