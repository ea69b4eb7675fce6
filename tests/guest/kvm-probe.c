/*
 * kvm-probe: exits 0 when /dev/kvm can run the guest tests here: it opens,
 * speaks the stable API and creates a VM, and the KVM behind it is hardware
 * virtualization (kvm_intel or kvm_amd).  Other KVM flavours (kvm_pvm, a
 * paravirtual nested KVM) create VMs but cannot run a stock Debian kernel,
 * so the tests go to the nested box there.  Says why on stdout when not.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int
main(void)
{
	int kvm, vm, version;

	if ((kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC)) == -1) {
		printf("/dev/kvm: %s\n", strerror(errno));
		return 1;
	}
	if ((version = ioctl(kvm, KVM_GET_API_VERSION, 0)) != KVM_API_VERSION) {
		printf("/dev/kvm: API version %d, not %d\n", version, KVM_API_VERSION);
		return 1;
	}
	if ((vm = ioctl(kvm, KVM_CREATE_VM, 0)) == -1) {
		printf("/dev/kvm: cannot create a VM: %s\n", strerror(errno));
		return 1;
	}
	close(vm);
	close(kvm);
	if (access("/sys/module/kvm_intel", F_OK) != 0 &&
	    access("/sys/module/kvm_amd", F_OK) != 0) {
		printf("/dev/kvm is not hardware virtualization (no kvm_intel or kvm_amd)\n");
		return 1;
	}
	return 0;
}
