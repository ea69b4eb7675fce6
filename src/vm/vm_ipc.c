/*
 * The VM process's side of the daemon: receiving its configuration and
 * descriptors from vmm, pause and unpause.  See vm_ipc.h.
 */
#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proto.h"
#include "devices/virtio.h"
#include "disk/disk.h"
#include "vm/vcpu.h"
#include "vm/firmware.h"
#include "vm/vm.h"
#include "vm/sandbox.h"
#include "vm/vm_ipc.h"

#define VM_DEFAULT_CMDLINE "console=ttyS0"
#define PAUSE_TIMEOUT_MS   5000

/* Daemon mode's part of the VM process's environment (vm->daemon). */
struct vm_daemon {
	int fd;
	struct vm_params params;
	char procname[VM_NAME_MAX + 8];
	int console_slave; /* held so that the pty stays up with no one attached */
	struct disk_chain chains[VM_MAX_DISKS];
	int cdrom_fd; /* -1: none */
	char cdrom_name[DISK_NAME_MAX];
	struct msg_buf buf;
	struct event *ev;
	/* Pause: vCPU threads park on cond until pause_requested clears. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int parked;
	struct kvm_clock_data clock;
};

bool
vm_ipc_wanted(int argc, char *argv[])
{
	return argc >= 3 && strcmp(argv[1], "-F") == 0;
}

/* Waits for and receives one message; -1 at end of file or on error. */
static int
recv_blocking(struct vm_daemon *d, struct msg *m)
{
	struct pollfd pfd = { d->fd, POLLIN, 0 };
	int rc;

	for (;;) {
		rc = msg_recv(d->fd, m, &d->buf);
		if (rc > 0)
			return 0;
		if (rc == 0 || errno != EAGAIN)
			return -1;
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -1;
	}
}

static int
take_fd(struct vm *vm, struct vm_daemon *d, struct msg *m)
{
	struct msg_vm_fd f;
	struct disk_chain *chain;
	struct disk_layer *layer;
	int fd;

	if (msg_read_vm_fd(m, &f) < 0 || m->nfds != 1) {
		log_warnx("malformed descriptor message");
		return -1;
	}
	fd = msg_take_fd(m, 0);
	switch (f.kind) {
	case VM_FD_KVM: vm->config.kvm_fd = fd; return 0;
	case VM_FD_KERNEL: vm->config.kernel_fd = fd; return 0;
	case VM_FD_INITRD: vm->config.initrd_fd = fd; return 0;
	case VM_FD_NETBOOT: vm->config.netboot_fd = fd; return 0;
	case VM_FD_CONSOLE:
		if (f.index == 0) {
			vm->config.console_in = vm->config.console_out = fd;
			fcntl(fd, F_SETFL, O_NONBLOCK); /* an unread console drops output */
		} else {
			d->console_slave = fd;
		}
		return 0;
	case VM_FD_DISK:
		if (f.index >= VM_MAX_DISKS || f.layer >= DISK_CHAIN_MAX ||
		    f.layer != (uint32_t)d->chains[f.index].count)
			break;
		chain = &d->chains[f.index];
		layer = &chain->layer[chain->count++];
		layer->fd = fd;
		layer->format = (enum disk_format)f.format;
		snprintf(layer->name, sizeof(layer->name), "%s", f.name);
		if (f.layer == 0)
			chain->writable = f.writable != 0;
		return 0;
	case VM_FD_TAP:
		if (f.index >= VM_CONFIG_NICS || f.index != (uint32_t)vm->config.ntaps)
			break;
		vm->config.taps[vm->config.ntaps++].fd = fd;
		return 0;
	case VM_FD_CDROM:
		if (d->cdrom_fd >= 0)
			break;
		d->cdrom_fd = fd;
		snprintf(d->cdrom_name, sizeof(d->cdrom_name), "%s", f.name);
		return 0;
	}
	close(fd);
	log_warnx("unexpected descriptor %u.%u.%u", f.kind, f.index, f.layer);
	return -1;
}

/* The CD-ROM image: one more disk, raw and read-only, after the others. */
static int
add_cdrom(struct vm_config *c, struct vm_daemon *d, char *err)
{
	struct disk_chain chain = { .count = 1, .writable = 0 };

	if (c->ndisks == VM_CONFIG_DISKS) {
		log_warnx("cdrom %s: more than %d disks", d->cdrom_name, VM_CONFIG_DISKS);
		return -1;
	}
	chain.layer[0] = (struct disk_layer){ .fd = d->cdrom_fd, .format = DISK_FORMAT_RAW };
	snprintf(chain.layer[0].name, sizeof(chain.layer[0].name), "%s", d->cdrom_name);
	d->cdrom_fd = -1; /* disk_from_chain owns it now */
	c->disks[c->ndisks] = disk_from_chain(&chain, err);
	if (c->disks[c->ndisks] == NULL) {
		log_warnx("%s", err);
		return -1;
	}
	c->cdrom_index = c->ndisks++;
	return 0;
}

/* An interface's local addresses and lock, after its tap. */
static int
take_nic(struct vm *vm, struct msg *m)
{
	struct msg_vm_nic n;
	struct vm_tap *tap;

	if (msg_read_vm_nic(m, &n) < 0 || m->nfds != 0 || n.index >= (uint32_t)vm->config.ntaps) {
		log_warnx("malformed interface message");
		return -1;
	}
	tap = &vm->config.taps[n.index];
	tap->locked = (n.flags & VM_NIC_MSG_LOCKED) != 0;
	tap->local = (n.flags & VM_NIC_MSG_LOCAL) != 0;
	tap->lease.server.s_addr = n.host_addr;
	tap->lease.client.s_addr = n.guest_addr;
	tap->lease.prefix_len = n.prefix_len;
	return 0;
}

static_assert((int)FIRMWARE_BOOT_DISK == (int)VM_BOOT_DISK && (int)FIRMWARE_BOOT_CDROM == (int)VM_BOOT_CDROM &&
		      (int)FIRMWARE_BOOT_NET == (int)VM_BOOT_NET,
	      "vm.conf's boot devices and the firmware's are the same numbers");

/* Turns what arrived into the vm_config that vm.c builds from. */
static int
fill_config(struct vm *vm, struct vm_daemon *d)
{
	struct vm_params *p = &d->params;
	struct vm_config *c = &vm->config;
	char err[DISK_ERROR_MAX];

	c->kernel_path = p->kernel[0] ? p->kernel : NULL; /* none: the default firmware, opened by the parent */
	c->boot_device = (int)p->boot_device; /* the same numbers: see the static_assert above */
	c->initrd_path = p->initrd[0] ? p->initrd : NULL;
	c->cmdline = p->cmdline[0] ? p->cmdline : VM_DEFAULT_CMDLINE;
	c->memory = p->memory;
	c->ncpus = (int)p->cpus;
	if (c->kvm_fd < 0 || c->console_in < 0) {
		log_warnx("no /dev/kvm or console descriptor");
		return -1;
	}
	if (c->kernel_fd < 0) {
		log_warnx("no kernel or firmware descriptor");
		return -1;
	}
	for (uint32_t i = 0; i < p->ndisks && i < VM_CONFIG_DISKS; i++) {
		if (d->chains[i].count == 0) {
			log_warnx("disk %s: not opened", p->disks[i].path);
			return -1;
		}
		c->disks[i] = disk_from_chain(&d->chains[i], err);
		if (c->disks[i] == NULL) {
			log_warnx("%s", err);
			return -1;
		}
		c->ndisks = (int)i + 1;
	}
	if (d->cdrom_fd >= 0 && add_cdrom(c, d, err) < 0)
		return -1;
	for (int i = 0; i < c->ntaps && (uint32_t)i < p->nnics; i++) {
		memcpy(c->taps[i].lladdr, p->nics[i].lladdr, 6);
		c->taps[i].lladdr_set = (p->nics[i].flags & VM_NIC_LLADDR) != 0;
		snprintf(c->taps[i].lease.hostname, sizeof(c->taps[i].lease.hostname), "%s", p->name);
	}
	return 0;
}

static void
parse_log_options(int argc, char *argv[], int *debug, int *verbose)
{
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "-d") == 0)
			*debug = 1;
		else if (strcmp(argv[i], "-v") == 0)
			(*verbose)++;
	}
}

int
vm_ipc_receive(struct vm *vm, int argc, char *argv[])
{
	struct vm_daemon *d = calloc(1, sizeof(*d));
	char err[512];
	int debug = 0, verbose = 0;
	struct msg m;

	if (d == NULL)
		return -1;
	vm->daemon = d;
	d->fd = atoi(argv[2]);
	d->console_slave = -1;
	d->cdrom_fd = -1;
	vm->config.cdrom_index = -1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	vm->config.kvm_fd = vm->config.kernel_fd = vm->config.initrd_fd = vm->config.netboot_fd = -1;
	vm->config.console_in = vm->config.console_out = -1;
	vm->config.control_fd = d->fd;
	fcntl(d->fd, F_SETFD, FD_CLOEXEC);
	parse_log_options(argc, argv, &debug, &verbose);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); /* vmm's death is ours */
	log_init("vmd vm", debug, verbose);

	if (recv_blocking(d, &m) < 0 || msg_read_vm_params(&m, &d->params, err, sizeof(err)) < 0) {
		log_warnx("no VM parameters from vmm");
		return -1;
	}
	snprintf(d->procname, sizeof(d->procname), "vm %s", d->params.name);
	log_procname(d->procname);
	for (;;) {
		if (recv_blocking(d, &m) < 0) {
			log_warnx("vmm went away during the start");
			return -1;
		}
		if (m.hdr.type == MSG_VMM_GO)
			break;
		if (m.hdr.type == MSG_VM_NIC && take_nic(vm, &m) == 0)
			continue;
		if (m.hdr.type != MSG_VM_FD || take_fd(vm, d, &m) < 0) {
			msg_close_fds(&m);
			log_warnx("unexpected %s message during the start", msg_type_name(m.hdr.type));
			return -1;
		}
	}
	if (vm_sandbox(d->params.name) < 0)
		return -1;
	return fill_config(vm, d);
}

static void
reply(struct vm_daemon *d, uint32_t type, int status)
{
	struct msg_vm_event ev = { 0, (int32_t)getpid(), status };

	if (msg_send(d->fd, type, 0, &ev, sizeof(ev), NULL, 0) < 0)
		log_warn("cannot reply to vmm");
}

/* Kicks every vCPU out of KVM_RUN and waits until all are parked. */
static int
vm_pause(struct vm *vm)
{
	struct vm_daemon *d = vm->daemon;
	struct timespec deadline;
	int rc = 0;

	if (atomic_load(&vm->pause_requested))
		return EALREADY;
	atomic_store(&vm->pause_requested, true);
	for (int i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += PAUSE_TIMEOUT_MS / 1000;
	pthread_mutex_lock(&d->lock);
	while (d->parked < vm->ncpus && rc == 0 && atomic_load(&vm->exit_status) < 0)
		rc = pthread_cond_timedwait(&d->cond, &d->lock, &deadline);
	pthread_mutex_unlock(&d->lock);
	if (rc != 0 || atomic_load(&vm->exit_status) >= 0) {
		atomic_store(&vm->pause_requested, false);
		pthread_cond_broadcast(&d->cond);
		return rc ? rc : ESRCH;
	}
	/* No vCPU runs, so no new requests: let the devices finish theirs and stop. */
	virtio_pause_all(vm);
	/* The guest's clock stops with it: kvmclock is restored on unpause. */
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &d->clock) < 0)
		log_warn("KVM_GET_CLOCK");
	log_info("paused");
	return 0;
}

static int
vm_unpause(struct vm *vm)
{
	struct vm_daemon *d = vm->daemon;
	struct kvm_clock_data clock = { .clock = d->clock.clock };

	if (!atomic_load(&vm->pause_requested))
		return EALREADY;
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
		log_warn("KVM_SET_CLOCK");
	virtio_resume_all(vm);
	pthread_mutex_lock(&d->lock);
	atomic_store(&vm->pause_requested, false);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	log_info("unpaused");
	return 0;
}

void
vm_pause_park(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	struct vm_daemon *d = vm->daemon;

	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	d->parked++;
	pthread_cond_broadcast(&d->cond);
	while (atomic_load(&vm->pause_requested) && atomic_load(&vm->exit_status) < 0) {
		/* Timed, so that an exit request (which does not signal) ends the wait. */
		struct timespec later;

		clock_gettime(CLOCK_REALTIME, &later);
		later.tv_nsec += 100 * 1000 * 1000;
		if (later.tv_nsec >= 1000000000L) {
			later.tv_sec++;
			later.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&d->cond, &d->lock, &later);
	}
	d->parked--;
	pthread_mutex_unlock(&d->lock);
}

static void
on_vmm_message(evutil_socket_t fd, short what, void *arg)
{
	struct vm *vm = arg;
	struct vm_daemon *d = vm->daemon;
	struct msg m;
	int rc;

	while ((rc = msg_recv(d->fd, &m, &d->buf)) > 0) {
		msg_close_fds(&m);
		if (m.hdr.type == MSG_VMM_PAUSE)
			reply(d, MSG_VMM_PAUSED, vm_pause(vm));
		else if (m.hdr.type == MSG_VMM_UNPAUSE)
			reply(d, MSG_VMM_UNPAUSED, vm_unpause(vm));
		else if (m.hdr.type == MSG_LOG_VERBOSE)
			continue;
		else
			fatalx("unexpected %s message from vmm", msg_type_name(m.hdr.type));
	}
	if (rc == 0 || errno != EAGAIN) {
		log_warnx("vmm went away: stopping");
		event_del(d->ev);
		vm_request_exit(vm, VM_EXIT_ERROR);
	}
}

int
vm_ipc_attach(struct vm *vm, struct event_base *base)
{
	struct vm_daemon *d = vm->daemon;

	d->ev = event_new(base, d->fd, EV_READ | EV_PERSIST, on_vmm_message, vm);
	if (d->ev == NULL || event_add(d->ev, NULL) < 0)
		return -1;
	return 0;
}
