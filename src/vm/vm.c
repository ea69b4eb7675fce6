/*
 * The VM process (vmd -V): builds one KVM virtual machine, boots it and runs
 * it until the guest powers off or resets.  The main thread becomes the event
 * thread (console input, signals, the exit request); each vCPU has a thread.
 *
 * Standalone use, for tests and debugging, with the console on stdio:
 *   vmd -V [-k kernel | -b bios] [-B disk|cdrom] [-I initrd] [-a cmdline]
 *          [-m size] [-p cpus] [-d disk[:ro]]... [-n tap]... [-r cdrom]
 */
#include <bsd/stdlib.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "common/log.h"
#include "common/size.h"
#include "devices/legacy.h"
#include "devices/pci.h"
#include "devices/uart.h"
#include "devices/virtio.h"
#include "devices/acpi_pm.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rng.h"
#include "disk/disk.h"
#include "net/tap.h"
#include "vm/acpi.h"
#include "vm/cpuid.h"
#include "vm/firmware.h"
#include "vm/linux_boot.h"
#include "vm/memory.h"
#include "vm/vcpu.h"
#include "vm/vm.h"
#include "vm/vm_ipc.h"

#define KVM_API_VERSION_EXPECTED 12
#define THREAD_STACK_SIZE	 (256 * 1024)
#define DEFAULT_MEMORY		 (512 * MIB)
#define DEFAULT_CMDLINE		 "console=ttyS0 panic=-1"
/* Between the LAPIC and the lowest a BIOS image may reach (4 GiB - 16 MiB), as QEMU puts them. */
#define TSS_ADDRESS		 0xfeffd000 /* 3 pages */
#define IDENTITY_MAP_ADDRESS	 0xfeffc000

void
vm_request_exit(struct vm *vm, int status)
{
	int expected = -1;
	uint64_t one = 1;

	if (atomic_compare_exchange_strong(&vm->exit_status, &expected, status) &&
	    write(vm->wakeup_fd, &one, sizeof(one)) < 0)
		log_warn("cannot wake the event thread");
}

void
vm_irq_line(struct vm *vm, int irq, int level)
{
	struct kvm_irq_level line = { .irq = (uint32_t)irq, .level = (uint32_t)level };

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &line) < 0)
		log_warn("KVM_IRQ_LINE %d", irq);
}

static int
vm_check_limits(struct vm *vm)
{
	int max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);

	if (max_vcpus <= 0)
		max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max_vcpus > ACPI_MAX_CPUS)
		max_vcpus = ACPI_MAX_CPUS; /* the MADT's APIC ids are 8 bits */
	if (vm->config.ncpus < 1 || vm->config.ncpus > max_vcpus) {
		log_warnx("%d vCPUs requested: this host's KVM allows 1 to %d", vm->config.ncpus, max_vcpus);
		return -1;
	}
	return 0;
}

static int
vm_create_kvm(struct vm *vm)
{
	uint64_t identity_map = IDENTITY_MAP_ADDRESS;
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	vm->kvm_fd = vm->config.kvm_fd >= 0 ? vm->config.kvm_fd : open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		log_warn("/dev/kvm");
		return -1;
	}
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION_EXPECTED) {
		log_warnx("/dev/kvm: unsupported KVM API version");
		return -1;
	}
	if (vm_check_limits(vm) < 0)
		return -1;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		log_warn("KVM_CREATE_VM");
		return -1;
	}
	/* Intel's VMX needs these pages for real mode; they sit in the hole. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, TSS_ADDRESS) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity_map) < 0) {
		log_warn("KVM TSS setup");
		return -1;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP) < 0 || ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		log_warn("KVM in-kernel irqchip and PIT");
		return -1;
	}
	return 0;
}

/* Each device registers its own I/O ranges. */
static int
vm_create_devices(struct vm *vm)
{
	if (uart_init(vm, vm->config.console_out) < 0 || rtc_init(vm) < 0 || i8042_init(vm) < 0 ||
	    debug_ports_init(vm) < 0 || pci_init(vm) < 0 || acpi_pm_init(vm) < 0) {
		log_warnx("cannot set up the devices");
		return -1;
	}
	for (int i = 0; i < vm->config.ndisks; i++)
		if (virtio_blk_add(vm, i, vm->config.disks[i], i == vm->config.cdrom_index ? "cdrom" : NULL) < 0)
			return -1;
	for (int i = 0; i < vm->config.ntaps; i++)
		if (virtio_net_add(vm, i, &vm->config.taps[i]) < 0)
			return -1;
	return virtio_rng_add(vm);
}

/* Maps fd (the daemon opened it) or else path. */
static void *
map_file(const char *path, int fd, size_t *size)
{
	struct stat st;
	void *data;

	if (fd < 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_warn("%s", path);
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		log_warnx("%s: not a regular, non-empty file", path);
		close(fd);
		return NULL;
	}
	data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (data == MAP_FAILED) {
		log_warn("%s", path);
		return NULL;
	}
	*size = (size_t)st.st_size;
	return data;
}

/* Boots the bzImage in image directly: ACPI tables, kernel, initrd, vCPU 0 at the 64-bit entry. */
static int
vm_boot_linux(struct vm *vm, struct linux_image *image)
{
	uint64_t entry;
	int rc;

	if (vm->config.boot_device != FIRMWARE_BOOT_DEFAULT) {
		log_warnx("boot device %s: only firmware boots from a device, and %s is a Linux kernel",
			  vm->config.boot_device == FIRMWARE_BOOT_CDROM ? "cdrom" :
			  vm->config.boot_device == FIRMWARE_BOOT_NET	? "net" : "disk",
			  image->name);
		return -1;
	}
	if ((image->rsdp = acpi_build_tables(vm)) == 0) {
		log_warnx("cannot build the ACPI tables");
		return -1;
	}
	if (vm->config.initrd_path) {
		image->initrd = map_file(vm->config.initrd_path, vm->config.initrd_fd, &image->initrd_size);
		if (image->initrd == NULL)
			return -1;
	}
	entry = linux_load(vm, image);
	if (image->initrd)
		munmap((void *)image->initrd, image->initrd_size);
	if (entry == 0)
		return -1;
	if ((rc = vcpu_set_linux_entry(&vm->vcpus[0], entry, MEM_BOOT_PARAMS)) < 0)
		log_warn("vCPU 0: cannot set its boot registers");
	return rc;
}

static int
vm_boot_firmware(struct vm *vm, const char *path, const uint8_t *image, size_t size)
{
	struct firmware_files files = { path, image, size, NULL, 0 };
	int rc;

	if (vm->config.initrd_path) {
		log_warnx("initrd %s: only a Linux kernel takes an initrd, and %s is a BIOS image",
			  vm->config.initrd_path, path);
		return -1;
	}
	/* Without an interface there is nothing to run it on: firmware_load says so. */
	if (vm->config.boot_device == FIRMWARE_BOOT_NET && vm->config.ntaps > 0) {
		files.netboot_rom = map_file(FIRMWARE_NETBOOT_ROM_PATH, vm->config.netboot_fd, &files.netboot_rom_size);
		if (files.netboot_rom == NULL) {
			log_warnx("boot device net: no network boot ROM (Debian's ipxe-qemu package has %s)",
				  FIRMWARE_NETBOOT_ROM_PATH);
			return -1;
		}
	}
	rc = firmware_load(vm, &files, vm->config.boot_device);
	if (files.netboot_rom)
		munmap((void *)files.netboot_rom, files.netboot_rom_size);
	return rc;
}

/*
 * The kernel file decides how the VM boots: a Linux bzImage directly, any
 * other file of a BIOS image's size as firmware.  Without one, the default
 * firmware boots from the disks.
 */
static int
vm_boot(struct vm *vm)
{
	const char *path = vm->config.kernel_path ? vm->config.kernel_path : FIRMWARE_DEFAULT_PATH;
	struct linux_image image = { .name = path, .cmdline = vm->config.cmdline };
	char why[128];
	int rc;

	image.data = map_file(path, vm->config.kernel_fd, &image.size);
	if (image.data == NULL) {
		if (vm->config.kernel_path == NULL)
			log_warnx("no kernel, and no firmware to boot from a disk (Debian's seabios package has %s)",
				  FIRMWARE_DEFAULT_PATH);
		return -1;
	}
	if (linux_check_image(image.data, image.size, why, sizeof(why)) == 0) {
		rc = vm_boot_linux(vm, &image);
	} else if (firmware_size_ok(image.size)) {
		rc = vm_boot_firmware(vm, path, image.data, image.size);
	} else {
		log_warnx("kernel %s: %s, nor a BIOS image", path, why);
		rc = -1;
	}
	munmap((void *)image.data, image.size);
	return rc;
}

static int
vm_create_vcpus(struct vm *vm)
{
	struct kvm_cpuid2 *cpuid = cpuid_supported(vm->kvm_fd);
	int rc = 0;

	if (cpuid == NULL)
		return -1;
	vm->vcpus = calloc((size_t)vm->ncpus, sizeof(*vm->vcpus));
	if (vm->vcpus == NULL)
		rc = -1;
	for (int i = 0; rc == 0 && i < vm->ncpus; i++)
		rc = vcpu_create(vm, &vm->vcpus[i], i, cpuid);
	free(cpuid);
	return rc;
}

static int
vm_build(struct vm *vm)
{
	vm->ncpus = vm->config.ncpus;
	if (vm_create_kvm(vm) < 0 || memory_setup(vm, vm->config.memory) < 0 || vm_create_devices(vm) < 0 ||
	    vm_create_vcpus(vm) < 0)
		return -1;
	return vm_boot(vm);
}

/* The event thread's state: what its callbacks need. */
struct vm_events {
	struct vm *vm;
	struct event_base *base;
	struct event *console;
	struct event *console_retry;
};

static void
on_console_input(evutil_socket_t fd, short what, void *arg)
{
	struct vm_events *ev = arg;
	uint8_t buf[512];
	size_t room = uart_room(ev->vm->uart);
	ssize_t n;

	if (room == 0) {
		/* The guest is not reading: look again shortly rather than drop input. */
		struct timeval later = { 0, 10000 };
		event_del(ev->console);
		event_add(ev->console_retry, &later);
		return;
	}
	n = read((int)fd, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		event_del(ev->console); /* end of input: the guest keeps running */
		return;
	}
	uart_receive(ev->vm->uart, buf, (size_t)n);
}

static void
on_console_retry(evutil_socket_t fd, short what, void *arg)
{
	struct vm_events *ev = arg;

	event_add(ev->console, NULL);
	on_console_input(ev->vm->config.console_in, EV_READ, ev);
}

static void
on_wakeup(evutil_socket_t fd, short what, void *arg)
{
	struct vm_events *ev = arg;
	uint64_t count;

	if (read((int)fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_warn("wakeup");
	if (atomic_load(&ev->vm->exit_status) >= 0)
		event_base_loopbreak(ev->base);
}

static void
on_power_button(evutil_socket_t sig, short what, void *arg)
{
	struct vm_events *ev = arg;

	log_info("pressing the power button");
	acpi_pm_press_power_button(ev->vm->pm);
}

static void
on_kick(int sig)
{
	/* Only interrupts KVM_RUN. */
}

/* libevent's own complaints (say, an unpollable console) are not errors here. */
static void
on_libevent_log(int severity, const char *msg)
{
	log_debug("libevent: %s", msg);
}

static int
vm_run_events(struct vm *vm)
{
	struct vm_events ev = { .vm = vm };
	struct event *wakeup, *term;

	event_set_log_callback(on_libevent_log);
	ev.base = event_base_new();
	if (ev.base == NULL)
		return -1;
	wakeup = event_new(ev.base, vm->wakeup_fd, EV_READ | EV_PERSIST, on_wakeup, &ev);
	term = evsignal_new(ev.base, SIGTERM, on_power_button, &ev);
	ev.console = event_new(ev.base, vm->config.console_in, EV_READ | EV_PERSIST, on_console_input, &ev);
	ev.console_retry = evtimer_new(ev.base, on_console_retry, &ev);
	if (!wakeup || !term || !ev.console || !ev.console_retry)
		return -1;
	event_add(wakeup, NULL);
	event_add(term, NULL);
	if (vm->daemon && vm_ipc_attach(vm, ev.base) < 0)
		return -1;
	/* A console that is not pollable (a regular file) is simply not read. */
	if (event_add(ev.console, NULL) < 0)
		log_debug("console input is not pollable; ignoring it");

	if (atomic_load(&vm->exit_status) < 0)
		event_base_dispatch(ev.base);

	event_free(ev.console_retry);
	event_free(ev.console);
	event_free(term);
	event_free(wakeup);
	event_base_free(ev.base);
	return 0;
}

/*
 * At exit, even when the guest never asked for a flush: the qcow2 engine
 * keeps new table entries in memory until one, so without it the guest's
 * last writes would be lost (leaked, never corrupt).  The device threads
 * are stopped first, so nothing uses a disk while it closes.
 */
static void
vm_close_disks(struct vm *vm)
{
	virtio_pause_all(vm);
	for (int i = 0; i < vm->config.ndisks; i++) {
		struct disk *disk = vm->config.disks[i];

		if (disk == NULL)
			continue;
		if (disk_flush(disk) < 0)
			log_warnx("disk %d: cannot flush at exit: %s", i, disk->error);
		disk_close(disk);
		vm->config.disks[i] = NULL;
	}
}

static int
vm_run(struct vm *vm)
{
	struct sigaction kick = { .sa_handler = on_kick };
	int started = 0;

	sigaction(SIGNAL_VCPU_KICK, &kick, NULL);
	for (; started < vm->ncpus; started++)
		if (vcpu_start(&vm->vcpus[started]) < 0) {
			vm_request_exit(vm, VM_EXIT_ERROR);
			break;
		}
	if (vm_run_events(vm) < 0) {
		log_warnx("cannot run the event loop");
		vm_request_exit(vm, VM_EXIT_ERROR);
	}
	for (int i = 0; i < started; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (int i = 0; i < started; i++)
		pthread_join(vm->vcpus[i].thread, NULL);
	vm_close_disks(vm);
	return atomic_load(&vm->exit_status);
}

static void
usage(void)
{
	fprintf(stderr, "usage: vmd -V [-k kernel | -b bios] [-B device] [-I initrd] [-a cmdline]\n"
			"              [-m size] [-p cpus] [-d disk[:ro]]... [-n tap]... [-r cdrom] [-v]\n");
	exit(VM_EXIT_ERROR);
}

static int
parse_memory(const char *text, uint64_t *bytes)
{
	if (size_parse(text, MIB, bytes) < 0) {
		log_warnx("memory %s: not a size (e.g. 512M, 4.5G)", text);
		return -1;
	}
	if (*bytes < VM_MIN_MEMORY) {
		log_warnx("memory %s is below the %lluM minimum", text, VM_MIN_MEMORY / MIB);
		return -1;
	}
	if (*bytes > VM_MAX_MEMORY) {
		log_warnx("memory %s is above the %lluG maximum", text, VM_MAX_MEMORY / GIB);
		return -1;
	}
	*bytes &= ~(MIB - 1); /* whole MiB: KVM slots want page multiples, e820 looks tidy */
	return 0;
}

/* -d path[:ro]: a disk image, raw or qcow2 (probed). */
static int
parse_disk(const char *arg, struct vm_config *config)
{
	char path[PATH_MAX], err[DISK_ERROR_MAX];
	size_t len = strlen(arg);
	bool readonly = len > 3 && strcmp(arg + len - 3, ":ro") == 0;

	if (config->ndisks == VM_CONFIG_DISKS) {
		log_warnx("disk %s: more than %d disks", arg, VM_CONFIG_DISKS);
		return -1;
	}
	snprintf(path, sizeof(path), "%.*s", (int)(readonly ? len - 3 : len), arg);
	config->disks[config->ndisks] = disk_open(path, DISK_FORMAT_AUTO, !readonly, err);
	if (config->disks[config->ndisks] == NULL) {
		log_warnx("%s", err);
		return -1;
	}
	config->ndisks++;
	return 0;
}

/*
 * -r image: the CD-ROM, a read-only raw disk whose serial says "cdrom"
 * (guests see /dev/vdN; /sys/block/vdN/serial tells it apart).
 */
static int
parse_cdrom(const char *path, struct vm_config *config)
{
	char err[DISK_ERROR_MAX];

	if (config->cdrom_index >= 0) {
		log_warnx("cdrom %s: only one CD-ROM image", path);
		return -1;
	}
	if (config->ndisks == VM_CONFIG_DISKS) {
		log_warnx("cdrom %s: more than %d disks", path, VM_CONFIG_DISKS);
		return -1;
	}
	config->disks[config->ndisks] = disk_open(path, DISK_FORMAT_RAW, false, err);
	if (config->disks[config->ndisks] == NULL) {
		log_warnx("%s", err);
		return -1;
	}
	config->cdrom_index = config->ndisks++;
	return 0;
}

/* -B disk|cdrom|net: where the firmware boots from. */
static int
parse_boot_device(const char *name)
{
	static const char *const names[] = { "disk", "cdrom", "net" };
	static const int values[] = { FIRMWARE_BOOT_DISK, FIRMWARE_BOOT_CDROM, FIRMWARE_BOOT_NET };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return values[i];
	log_warnx("boot device %s: not disk, cdrom or net", name);
	return -1;
}

/* -n name: a tap device, created unless it exists. */
static int
parse_tap(const char *name, struct vm_config *config)
{
	char err[TAP_ERROR_MAX];

	if (config->ntaps == VM_CONFIG_NICS) {
		log_warnx("interface %s: more than %d interfaces", name, VM_CONFIG_NICS);
		return -1;
	}
	config->taps[config->ntaps].fd = tap_open(name, err);
	if (config->taps[config->ntaps].fd < 0) {
		log_warnx("%s", err);
		return -1;
	}
	config->ntaps++;
	return 0;
}

static int
parse_standalone_args(int argc, char *argv[], struct vm_config *config)
{
	const char *errstr = NULL;
	int ch;

	*config = (struct vm_config){
		.cmdline = DEFAULT_CMDLINE,
		.memory = DEFAULT_MEMORY,
		.ncpus = 1,
		.console_in = STDIN_FILENO,
		.console_out = STDOUT_FILENO,
		.kvm_fd = -1,
		.kernel_fd = -1,
		.initrd_fd = -1,
		.netboot_fd = -1,
		.control_fd = -1,
		.cdrom_index = -1,
	};
	while ((ch = getopt(argc, argv, "a:B:b:d:I:k:m:n:p:r:v")) != -1) {
		switch (ch) {
		case 'a': config->cmdline = optarg; break;
		case 'B':
			if ((config->boot_device = parse_boot_device(optarg)) < 0)
				return -1;
			break;
		case 'd':
			if (parse_disk(optarg, config) < 0)
				return -1;
			break;
		case 'n':
			if (parse_tap(optarg, config) < 0)
				return -1;
			break;
		case 'r':
			if (parse_cdrom(optarg, config) < 0)
				return -1;
			break;
		case 'I': config->initrd_path = optarg; break;
		case 'b':
		case 'k': config->kernel_path = optarg; break;
		case 'v': log_set_verbose(log_get_verbose() + 1); break;
		case 'm':
			if (parse_memory(optarg, &config->memory) < 0)
				return -1;
			break;
		case 'p':
			config->ncpus = (int)strtonum(optarg, 1, 65536, &errstr);
			if (errstr) {
				log_warnx("cpus %s: %s (1 to what KVM allows)", optarg, errstr);
				return -1;
			}
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	return 0;
}

/* Puts a terminal console in raw mode, so that every key goes to the guest. */
static int
console_raw(int fd, struct termios *saved)
{
	struct termios raw;

	if (!isatty(fd) || tcgetattr(fd, saved) < 0)
		return 0;
	raw = *saved;
	cfmakeraw(&raw);
	tcsetattr(fd, TCSANOW, &raw);
	return 1;
}

/*
 * vCPU and device threads need little stack.  The default 8 MiB stacks are
 * 2 MiB aligned, so with transparent huge pages on each would cost a whole
 * huge page of RSS.
 */
static void
limit_thread_stacks(void)
{
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK_SIZE);
	pthread_setattr_default_np(&attr);
	pthread_attr_destroy(&attr);
}

int
vm_main(int argc, char *argv[])
{
	static struct vm vm; /* the process's one VM */
	struct termios saved;
	int status, restore;

	log_init("vmd -V", 1, 0);
	limit_thread_stacks();
	signal(SIGPIPE, SIG_IGN);
	atomic_init(&vm.exit_status, -1);
	if (vm_ipc_wanted(argc, argv) ? vm_ipc_receive(&vm, argc, argv) < 0
				       : parse_standalone_args(argc, argv, &vm.config) < 0)
		return VM_EXIT_ERROR;
	vm.wakeup_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm.wakeup_fd < 0 || vm_build(&vm) < 0)
		return VM_EXIT_ERROR;
	/* SIGTERM is taken by the event loop; vCPU threads inherit it blocked. */
	restore = console_raw(vm.config.console_in, &saved);
	status = vm_run(&vm);
	if (restore)
		tcsetattr(vm.config.console_in, TCSANOW, &saved);
	return status;
}
