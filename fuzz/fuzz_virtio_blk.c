/*
 * libFuzzer target for virtio-blk request handling: the input is cut into
 * a chain of guest buffers (readable ones, then writable ones) carrying the
 * request header, data and discard segments, served against a small raw
 * disk in memory (writable or read-only).  Nothing may crash, and the
 * device never reports more bytes written than the writable buffers hold.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices/virtio.h"
#include "devices/virtio_blk.h"
#include "disk/disk.h"

#define DISK_SIZE (64 * 1024)
#define MAX_BUFS  16

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iovec iov[MAX_BUFS];
	uint8_t *copy;
	char err[DISK_ERROR_MAX];
	struct disk *disk;
	size_t at;
	uint32_t nbufs, nout;
	uint64_t out_len = 0, in_len = 0;
	int fd;

	if (size < 3)
		return 0;
	nbufs = data[0] % MAX_BUFS + 1;
	nout = data[1] % (nbufs + 1);
	copy = malloc(size);
	memcpy(copy, data, size);
	/* Bytes 3.. give the buffers' lengths (in 4-byte units); the buffers follow. */
	at = 3 + nbufs;
	for (uint32_t i = 0; i < nbufs; i++) {
		size_t len = 3 + i < size ? (size_t)copy[3 + i] * 4 : 0;

		if (at > size)
			at = size;
		if (len > size - at)
			len = size - at;
		iov[i] = (struct iovec){ copy + at, len };
		at += len;
		if (i < nout)
			out_len += len;
		else
			in_len += len;
	}
	fd = memfd_create("fuzz-disk", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, DISK_SIZE) < 0)
		abort();
	disk = raw_open_fd(fd, "fuzz-disk", data[2] & 1, err);
	if (disk == NULL)
		abort();
	{
		struct virtio_blk_request req = {
			.disk = disk,
			.serial = "fuzz",
			.iov = iov,
			.nout = nout,
			.nin = nbufs - nout,
			.out_len = out_len,
			.in_len = in_len,
		};
		long used = virtio_blk_handle(&req);

		if (used > (long)in_len)
			abort();
	}
	disk_close(disk);
	free(copy);
	return 0;
}
