/* Direct boot of a Linux bzImage (the x86 boot protocol, 64-bit entry). */
#ifndef VMD_LINUX_BOOT_H
#define VMD_LINUX_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

/* Oldest boot protocol we accept: 2.12 brought xloadflags and the 64-bit entry. */
#define LINUX_MIN_PROTOCOL 0x020c

struct linux_image {
	const char *name;       /* for messages */
	const uint8_t *data;    /* the whole bzImage file */
	size_t size;
	const uint8_t *initrd;  /* may be NULL */
	size_t initrd_size;
	const char *cmdline;
	uint64_t rsdp;		/* guest address of the ACPI RSDP */
};

/*
 * Checks that image is a bzImage we can boot; on refusal writes the reason
 * to why and returns -1.
 */
int linux_check_image(const uint8_t *data, size_t size, char *why, size_t whylen);
/*
 * Where linux_load puts the protected-mode kernel of the bzImage in data
 * (one that linux_check_image accepted):
 * its preferred address when it is relocatable and it fits below
 * low_ram_size with an initrd of initrd_size bytes above it, else 1 MiB.
 */
uint64_t linux_load_address(const uint8_t *data, size_t size, uint64_t low_ram_size, uint64_t initrd_size);
/* true when word is on the kernel command line as a word of its own (how the kernel matches flags) */
bool linux_cmdline_has_flag(const char *cmdline, const char *word);
/*
 * Loads the kernel, initrd, command line and boot_params into guest memory.
 * Returns the 64-bit entry point, or 0 with the reason logged.
 */
uint64_t linux_load(struct vm *vm, const struct linux_image *image);

#endif
