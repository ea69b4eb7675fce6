/*
 * virtio-blk request handling against a raw disk in memory (memfd): reads
 * and writes through scattered buffers, flush, GET_ID, discard and
 * write-zeroes, and the refusals (out of range, read-only, malformed).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices/virtio.h"
#include "devices/virtio_blk.h"
#include "disk/disk.h"
#include "unit/check.h"

#define DISK_BYTES (64 * 1024)

static struct disk *
memory_disk(int writable)
{
	char err[DISK_ERROR_MAX];
	int fd = memfd_create("test-disk", MFD_CLOEXEC);
	struct disk *disk;

	CHECK(fd >= 0 && ftruncate(fd, DISK_BYTES) == 0);
	disk = raw_open_fd(fd, "images/test-disk.img", writable, err);
	CHECK(disk != NULL);
	return disk;
}

static void
header(uint8_t *h, uint32_t type, uint64_t sector)
{
	memset(h, 0, 16);
	virtio_put32(h, type);
	virtio_put64(h + 8, sector);
}

/* Runs one request: out buffers, then in buffers; returns the used length. */
static long
run(struct disk *disk, struct iovec *iov, uint32_t nout, uint32_t nin)
{
	struct virtio_blk_request req = { .disk = disk, .serial = "serial-1", .iov = iov, .nout = nout, .nin = nin };

	for (uint32_t i = 0; i < nout + nin; i++) {
		if (i < nout)
			req.out_len += iov[i].iov_len;
		else
			req.in_len += iov[i].iov_len;
	}
	return virtio_blk_handle(&req);
}

static void
blk_write_then_read_scattered(void)
{
	struct disk *disk = memory_disk(1);
	uint8_t h[16], data[1024], back[1024], status = 0xff;
	struct iovec w[] = { { h, 8 }, { h + 8, 8 }, { data, 100 }, { data + 100, 924 }, { &status, 1 } };
	struct iovec r[] = { { h, 16 }, { back, 512 }, { back + 512, 512 }, { &status, 1 } };

	for (int i = 0; i < 1024; i++)
		data[i] = (uint8_t)(i * 7);
	header(h, VIRTIO_BLK_T_OUT, 5);
	CHECK(run(disk, w, 4, 1) == 1 && status == VIRTIO_BLK_S_OK);
	header(h, VIRTIO_BLK_T_IN, 5);
	status = 0xff;
	CHECK(run(disk, r, 1, 3) == 1025 && status == VIRTIO_BLK_S_OK);
	CHECK(memcmp(data, back, sizeof(data)) == 0);
	disk_close(disk);
}

static void
blk_refuses_out_of_range_and_odd_lengths(void)
{
	struct disk *disk = memory_disk(1);
	uint8_t h[16], data[1024], status;
	struct iovec r[] = { { h, 16 }, { data, 1024 }, { &status, 1 } };
	struct iovec odd[] = { { h, 16 }, { data, 100 }, { &status, 1 } };

	header(h, VIRTIO_BLK_T_IN, DISK_BYTES / 512 - 1); /* the second sector is past the end */
	CHECK(run(disk, r, 1, 2) >= 1 && status == VIRTIO_BLK_S_IOERR);
	header(h, VIRTIO_BLK_T_IN, 0xffffffffffffffffULL); /* sector * 512 overflows */
	CHECK(run(disk, r, 1, 2) >= 1 && status == VIRTIO_BLK_S_IOERR);
	header(h, VIRTIO_BLK_T_IN, 0);
	CHECK(run(disk, odd, 1, 2) >= 1 && status == VIRTIO_BLK_S_IOERR);
	header(h, 99, 0);
	CHECK(run(disk, r, 1, 2) == 1 && status == VIRTIO_BLK_S_UNSUPP);
	disk_close(disk);
}

static void
blk_read_only_refuses_writes(void)
{
	struct disk *disk = memory_disk(0);
	uint8_t h[16], seg[16], data[512] = { 1 }, status;
	struct iovec w[] = { { h, 16 }, { data, 512 }, { &status, 1 } };
	struct iovec d[] = { { h, 16 }, { seg, 16 }, { &status, 1 } };

	header(h, VIRTIO_BLK_T_OUT, 0);
	CHECK(run(disk, w, 2, 1) == 1 && status == VIRTIO_BLK_S_IOERR);
	header(h, VIRTIO_BLK_T_DISCARD, 0);
	virtio_put64(seg, 0);
	virtio_put32(seg + 8, 8);
	virtio_put32(seg + 12, 0);
	CHECK(run(disk, d, 2, 1) == 1 && status == VIRTIO_BLK_S_IOERR);
	header(h, VIRTIO_BLK_T_FLUSH, 0);
	CHECK(run(disk, w + 2, 0, 1) == -1); /* no header at all: malformed */
	CHECK(run(disk, (struct iovec[]){ { h, 16 }, { &status, 1 } }, 1, 1) == 1 && status == VIRTIO_BLK_S_OK);
	disk_close(disk);
}

static void
blk_get_id_and_zeroes(void)
{
	struct disk *disk = memory_disk(1);
	uint8_t h[16], id[20], seg[16], data[512], status;
	struct iovec g[] = { { h, 16 }, { id, 20 }, { &status, 1 } };
	struct iovec z[] = { { h, 16 }, { seg, 16 }, { &status, 1 } };
	struct iovec w[] = { { h, 16 }, { data, 512 }, { &status, 1 } };

	header(h, VIRTIO_BLK_T_GET_ID, 0);
	CHECK(run(disk, g, 1, 2) == 21 && status == VIRTIO_BLK_S_OK && memcmp(id, "serial-1", 9) == 0);

	memset(data, 0xab, sizeof(data));
	header(h, VIRTIO_BLK_T_OUT, 3);
	CHECK(run(disk, w, 2, 1) == 1 && status == VIRTIO_BLK_S_OK);
	header(h, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	virtio_put64(seg, 3);
	virtio_put32(seg + 8, 1);
	virtio_put32(seg + 12, 0);
	CHECK(run(disk, z, 2, 1) == 1 && status == VIRTIO_BLK_S_OK);
	header(h, VIRTIO_BLK_T_IN, 3);
	CHECK(run(disk, (struct iovec[]){ { h, 16 }, { data, 512 }, { &status, 1 } }, 1, 2) == 513);
	CHECK(data[0] == 0 && data[511] == 0);
	disk_close(disk);
}

static void
blk_refuses_malformed_requests(void)
{
	struct disk *disk = memory_disk(1);
	uint8_t h[16], status;

	header(h, VIRTIO_BLK_T_IN, 0);
	CHECK(run(disk, (struct iovec[]){ { h, 12 }, { &status, 1 } }, 1, 1) == -1); /* short header */
	CHECK(run(disk, (struct iovec[]){ { h, 16 } }, 1, 0) == -1);		      /* no status byte */
	disk_close(disk);
}

/* A request's data is bounded by what the device offered (seg_max buffers of size_max), whatever the disk. */
static void
blk_refuses_requests_beyond_the_offered_limits(void)
{
	char err[DISK_ERROR_MAX];
	int fd = memfd_create("test-big-disk", MFD_CLOEXEC);
	uint64_t len = VIRTIO_BLK_REQUEST_MAX + 512;
	uint8_t h[16], status = 0xff;
	struct disk *disk;
	void *data;

	CHECK(fd >= 0 && ftruncate(fd, (off_t)(2 * len)) == 0); /* sparse: range_ok passes */
	disk = raw_open_fd(fd, "images/test-big-disk.img", 1, err);
	CHECK(disk != NULL);
	data = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(data != MAP_FAILED);
	header(h, VIRTIO_BLK_T_IN, 0);
	CHECK(run(disk, (struct iovec[]){ { h, 16 }, { data, len }, { &status, 1 } }, 1, 2) == 1);
	CHECK(status == VIRTIO_BLK_S_IOERR);
	munmap(data, len);
	disk_close(disk);
}

int
main(void)
{
	RUN_TEST(blk_write_then_read_scattered);
	RUN_TEST(blk_refuses_out_of_range_and_odd_lengths);
	RUN_TEST(blk_read_only_refuses_writes);
	RUN_TEST(blk_get_id_and_zeroes);
	RUN_TEST(blk_refuses_malformed_requests);
	RUN_TEST(blk_refuses_requests_beyond_the_offered_limits);
	TEST_EXIT();
}
