/*
 * libFuzzer target for the kernel unpacking a bzImage boot does in vmd
 * (src/vm/unpack.c, src/vm/vmlinux.c): the kernel file is the user's, but a
 * corrupt one must be refused, never crash the VM process or write outside
 * the memory set aside for the kernel.  The first byte picks what the rest
 * is: even, an unpacked kernel (ELF and relocation table) written in pieces
 * of a size the byte also picks; odd, a compressed payload (gzip, xz, lz4 or
 * zstd with the unpacked size appended).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vm/unpack.h"
#include "vm/vmlinux.h"

#define ROOM	     (4u << 20) /* guest memory for the kernel; ASan catches writes past it */
#define MAX_UNPACKED (8u << 20) /* a bigger claimed size only makes the fuzzer slow */

static void
load_raw(struct vmlinux *k, const uint8_t *data, size_t size, size_t piece)
{
	for (size_t off = 0; off < size; off += piece)
		if (vmlinux_write(k, data + off, size - off < piece ? size - off : piece) < 0)
			return;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vmlinux k;
	uint8_t *dest;
	char why[128];
	uint8_t mode;
	int rc = 0;

	if (size < 1)
		return 0;
	mode = data[0];
	data++, size--;
	if ((mode & 1) && (unpack_format(data, size) == NULL || unpack_size(data, size) > MAX_UNPACKED))
		return 0;
	if ((dest = calloc(1, ROOM)) == NULL)
		return 0;
	vmlinux_init(&k, dest, ROOM, (mode & 1) ? unpack_size(data, size) : size);
	if (mode & 1)
		rc = unpack_payload(data, size, vmlinux_write, &k, why, sizeof(why));
	else
		load_raw(&k, data, size, 1 + (size_t)(mode >> 1) * 97);
	if (rc == 0 && vmlinux_finish(&k) == 0)
		vmlinux_relocate(&k, (uint64_t)(mode >> 4) << 21);
	vmlinux_free(&k);
	free(dest);
	return 0;
}
