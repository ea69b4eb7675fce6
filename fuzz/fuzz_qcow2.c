/*
 * libFuzzer target for the qcow2 engine: the input is an image file.  It is
 * opened read-only and read at spread-out offsets (header, L1, L2, refcount
 * and compressed-cluster parsing), then opened writable and written to
 * (allocation, refcount updates, copy-on-write from compressed clusters and
 * from a backing file).  Nothing may crash, whatever the bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "disk/disk.h"
#include "disk/qcow2.h"

#define BACKING_SIZE (1 << 20)

static int
memfd_with(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);

	if (fd == -1)
		return -1;
	if (size > 0 && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A chain for the image in fd: the image, and a raw backing file when the
 * header names one (its name is not opened: the fuzzer has no files). */
static struct disk *
open_image(const uint8_t *data, size_t size, int writable)
{
	struct disk_chain chain = { .count = 1, .writable = writable };
	char err[DISK_ERROR_MAX];
	struct qcow2_info info;
	int fd;

	if ((fd = memfd_with(data, size)) == -1)
		return NULL;
	chain.layer[0].fd = fd;
	chain.layer[0].format = DISK_FORMAT_QCOW2;
	strcpy(chain.layer[0].name, "fuzz.qcow2");
	if (qcow2_read_info(fd, "fuzz.qcow2", &info, err) == 0 &&
	    info.has_backing) {
		int bfd = memfd_create("backing", MFD_CLOEXEC);

		if (bfd == -1 || ftruncate(bfd, BACKING_SIZE) == -1 ||
		    pwrite(bfd, "backing", 7, 4096) != 7) {
			if (bfd != -1)
				close(bfd);
			close(fd);
			return NULL;
		}
		chain.layer[1].fd = bfd;
		chain.layer[1].format = DISK_FORMAT_RAW;
		strcpy(chain.layer[1].name, "backing.raw");
		chain.count = 2;
	}
	return disk_from_chain(&chain, err);
}

static void
read_around(struct disk *disk)
{
	static uint8_t buf[1 << 16];
	struct disk_mapping m;
	uint64_t run;

	for (uint64_t i = 0; i < 48; i++) {
		uint64_t off = disk->size / 48 * i;
		size_t len = sizeof(buf) >> (i % 5);

		if (off > disk->size)
			break;
		if (len > disk->size - off)
			len = (size_t)(disk->size - off);
		(void)disk_read(disk, buf, len, off);
		(void)disk_block_status(disk, off, disk->size - off, &run);
		(void)disk_map(disk, off, disk->size - off, &m);
	}
}

/* vmctl create -i: copy a small image into a raw one (mapped reads). */
static void
copy_out(struct disk *src)
{
	char err[DISK_ERROR_MAX];
	struct disk *dst;
	int fd;

	if (src->size > (8 << 20) ||
	    (fd = memfd_create("copy", MFD_CLOEXEC)) == -1)
		return;
	if (ftruncate(fd, (off_t)src->size) == -1) {
		close(fd);
		return;
	}
	if ((dst = raw_open_fd(fd, "copy.raw", 1, err)) == NULL) {
		close(fd);
		return;
	}
	(void)disk_copy(src, dst, err);
	disk_close(dst);
}

static void
write_around(struct disk *disk, const uint8_t *data, size_t size)
{
	static uint8_t buf[200000];

	memset(buf, 0x5c, sizeof(buf));
	for (uint64_t i = 0; i < 12; i++) {
		uint64_t off = disk->size / 12 * i + (size > i ? data[i] : 0) * 7;
		size_t len = i % 3 == 0 ? sizeof(buf) : 3000 + i;

		if (off >= disk->size)
			continue;
		if (len > disk->size - off)
			len = (size_t)(disk->size - off);
		if (i == 7)
			(void)disk_discard(disk, off, len);
		else
			(void)disk_write(disk, buf, len, off);
	}
	(void)disk_flush(disk);
	read_around(disk);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct disk *disk;

	if ((disk = open_image(data, size, 0)) != NULL) {
		read_around(disk);
		copy_out(disk);
		disk_close(disk);
	}
	if ((disk = open_image(data, size, 1)) != NULL) {
		write_around(disk, data, size);
		disk_close(disk);
	}
	return 0;
}
