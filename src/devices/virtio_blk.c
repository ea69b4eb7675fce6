/*
 * virtio-blk (virtio 1.x, 5.2): read, write, flush, GET_ID, discard and
 * write-zeroes on a disk of src/disk, read-only when the disk is.  The I/O
 * thread serves the queue; a raw disk is read and written straight into
 * guest memory with preadv/pwritev, other formats buffer by buffer.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/virtio.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_pci.h"
#include "disk/disk.h"

#define VIRTIO_ID_BLOCK		  2
#define PCI_CLASS_STORAGE_OTHER	  0x0180
#define SECTOR_SIZE		  512
#define HEADER_BYTES		  16
#define DISCARD_SEGMENT_BYTES	  16

#define VIRTIO_BLK_F_SIZE_MAX	  (1ULL << 1)
#define VIRTIO_BLK_F_SEG_MAX	  (1ULL << 2)
#define VIRTIO_BLK_F_RO		  (1ULL << 5)
#define VIRTIO_BLK_F_FLUSH	  (1ULL << 9)
#define VIRTIO_BLK_F_DISCARD	  (1ULL << 13)
#define VIRTIO_BLK_F_WRITE_ZEROES (1ULL << 14)

/* Config space offsets (virtio 1.x, 5.2.4). */
#define CONFIG_CAPACITY		  0
#define CONFIG_SIZE_MAX		  8
#define CONFIG_SEG_MAX		  12
#define CONFIG_BLK_SIZE		  20
#define CONFIG_MAX_DISCARD_SECTORS 36
#define CONFIG_MAX_DISCARD_SEG	  40
#define CONFIG_DISCARD_ALIGNMENT  44
#define CONFIG_MAX_ZEROES_SECTORS 48
#define CONFIG_MAX_ZEROES_SEG	  52
#define CONFIG_ZEROES_MAY_UNMAP	  56
#define CONFIG_BYTES		  60

#define MAX_DISCARD_SECTORS	  (1u << 22) /* 2 GiB per segment */

struct virtio_blk {
	struct virtio_device dev;
	struct disk *disk;
	char serial[VIRTIO_BLK_ID_BYTES + 1];
	struct virtq_chain chain;
};

static long
request_fail(struct virtio_blk_request *req, const char *why)
{
	snprintf(req->error, sizeof(req->error), "%s", why);
	return -1;
}

/* Whether [sector, sector + len bytes) lies on the disk, without overflowing. */
static bool
range_ok(const struct disk *disk, uint64_t sector, uint64_t len)
{
	uint64_t sectors = disk->size / SECTOR_SIZE;

	return sector <= sectors && len / SECTOR_SIZE <= sectors - sector &&
	       sector * SECTOR_SIZE + len <= disk->size;
}

static int
raw_transfer(struct disk *disk, struct iovec *iov, uint32_t n, uint64_t offset, bool is_write)
{
	while (n > 0) {
		ssize_t done = is_write ? pwritev(disk->fd, iov, (int)(n > IOV_MAX ? IOV_MAX : n), (off_t)offset)
					: preadv(disk->fd, iov, (int)(n > IOV_MAX ? IOV_MAX : n), (off_t)offset);

		if (done < 0 && errno == EINTR)
			continue;
		if (done < 0)
			return -1;
		if (done == 0) {
			if (is_write)
				return -1;
			/* The file shrank under us: the rest reads as zeros. */
			for (uint32_t i = 0; i < n; i++)
				memset(iov[i].iov_base, 0, iov[i].iov_len);
			return 0;
		}
		offset += (uint64_t)done;
		while (n > 0 && (size_t)done >= iov->iov_len) {
			done -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + done;
			iov->iov_len -= (size_t)done;
		}
	}
	return 0;
}

static int
disk_transfer(struct disk *disk, struct iovec *iov, uint32_t n, uint64_t offset, bool is_write)
{
	if (disk->format == DISK_FORMAT_RAW)
		return raw_transfer(disk, iov, n, offset, is_write);
	for (uint32_t i = 0; i < n; i++) {
		int rc = is_write ? disk_write(disk, iov[i].iov_base, iov[i].iov_len, offset)
				  : disk_read(disk, iov[i].iov_base, iov[i].iov_len, offset);
		if (rc < 0)
			return -1;
		offset += iov[i].iov_len;
	}
	return 0;
}

static uint8_t
blk_read_write(struct virtio_blk_request *req, uint64_t sector, bool is_write, uint64_t *written)
{
	struct iovec data[VIRTQ_CHAIN_MAX];
	uint64_t len = is_write ? req->out_len - HEADER_BYTES : req->in_len - 1;
	uint32_t n;

	if (is_write && !req->disk->writable)
		return VIRTIO_BLK_S_IOERR;
	/* What the device offered bounds one request's work (a guest may ignore it). */
	if (len % SECTOR_SIZE || len > VIRTIO_BLK_REQUEST_MAX || !range_ok(req->disk, sector, len))
		return VIRTIO_BLK_S_IOERR;
	if (is_write)
		n = iov_slice(req->iov, req->nout, HEADER_BYTES, len, data, VIRTQ_CHAIN_MAX);
	else
		n = iov_slice(req->iov + req->nout, req->nin, 0, len, data, VIRTQ_CHAIN_MAX);
	if (disk_transfer(req->disk, data, n, sector * SECTOR_SIZE, is_write) < 0)
		return VIRTIO_BLK_S_IOERR;
	if (!is_write)
		*written = len;
	return VIRTIO_BLK_S_OK;
}

static int
write_zeroes(struct disk *disk, uint64_t offset, uint64_t len)
{
	static const uint8_t zeros[64 * 1024];

	while (len > 0) {
		size_t chunk = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);

		if (disk_write(disk, zeros, chunk, offset) < 0)
			return -1;
		offset += chunk;
		len -= chunk;
	}
	return 0;
}

/* DISCARD and WRITE_ZEROES: a list of {sector, num_sectors, flags} segments. */
static uint8_t
blk_discard(struct virtio_blk_request *req, bool zeroes)
{
	uint64_t bytes = req->out_len - HEADER_BYTES;
	uint8_t segment[DISCARD_SEGMENT_BYTES];

	if (!req->disk->writable)
		return VIRTIO_BLK_S_IOERR;
	if (bytes == 0 || bytes % DISCARD_SEGMENT_BYTES || bytes / DISCARD_SEGMENT_BYTES > VIRTIO_BLK_DISCARD_SEGS)
		return VIRTIO_BLK_S_UNSUPP;
	for (uint64_t at = HEADER_BYTES; at < req->out_len; at += DISCARD_SEGMENT_BYTES) {
		uint64_t sector, len;
		uint32_t count, flags;

		iov_copy_from(req->iov, req->nout, at, segment, sizeof(segment));
		sector = virtio_get64(segment);
		count = virtio_get32(segment + 8);
		flags = virtio_get32(segment + 12);
		len = (uint64_t)count * SECTOR_SIZE;
		if (count > MAX_DISCARD_SECTORS || (flags & ~1u) || (!zeroes && flags))
			return VIRTIO_BLK_S_UNSUPP;
		if (!range_ok(req->disk, sector, len))
			return VIRTIO_BLK_S_IOERR;
		if (zeroes ? write_zeroes(req->disk, sector * SECTOR_SIZE, len) < 0
			   : disk_discard(req->disk, sector * SECTOR_SIZE, len) < 0)
			return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static uint64_t
blk_get_id(struct virtio_blk_request *req)
{
	uint8_t id[VIRTIO_BLK_ID_BYTES] = { 0 };
	uint64_t room = req->in_len - 1;

	if (req->serial)
		memcpy(id, req->serial, strnlen(req->serial, sizeof(id)));
	return iov_copy_to(req->iov + req->nout, req->nin, 0, id, room < sizeof(id) ? room : sizeof(id));
}

long
virtio_blk_handle(struct virtio_blk_request *req)
{
	uint8_t header[HEADER_BYTES], status;
	uint64_t written = 0;
	uint32_t type;

	if (req->out_len < HEADER_BYTES)
		return request_fail(req, "request without a complete header");
	if (req->in_len < 1)
		return request_fail(req, "request without a writable status byte");
	iov_copy_from(req->iov, req->nout, 0, header, sizeof(header));
	type = virtio_get32(header);
	switch (type) {
	case VIRTIO_BLK_T_IN:
		status = blk_read_write(req, virtio_get64(header + 8), false, &written);
		break;
	case VIRTIO_BLK_T_OUT:
		status = blk_read_write(req, virtio_get64(header + 8), true, &written);
		break;
	case VIRTIO_BLK_T_FLUSH:
		status = disk_flush(req->disk) < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_GET_ID:
		written = blk_get_id(req);
		status = VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		status = blk_discard(req, type == VIRTIO_BLK_T_WRITE_ZEROES);
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
	}
	iov_copy_to(req->iov + req->nout, req->nin, req->in_len - 1, &status, 1);
	return (long)written + 1;
}

/* Serves one request (virtio_serve_fn); it moved the bytes of its buffers at most. */
static long
blk_serve(struct virtio_device *dev, int queue, struct virtq_chain *chain)
{
	struct virtio_blk *blk = (struct virtio_blk *)dev;
	struct virtio_blk_request req = {
		.disk = blk->disk,
		.serial = blk->serial,
		.iov = chain->iov,
		.nout = chain->nout,
		.nin = chain->nin,
		.out_len = chain->out_len,
		.in_len = chain->in_len,
	};
	long used = virtio_blk_handle(&req);

	if (used < 0) {
		virtio_device_error(dev, "%s", req.error);
		return -1;
	}
	virtq_push(&dev->queues[queue], chain->head, (uint32_t)used);
	virtio_queue_interrupt(dev, queue);
	return (long)(chain->out_len + chain->in_len);
}

static void
blk_queue_notified(struct virtio_device *dev, int queue)
{
	virtio_serve_requests(dev, queue, &((struct virtio_blk *)dev)->chain, blk_serve);
}

static const struct virtio_device_ops virtio_blk_ops = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.pci_class = PCI_CLASS_STORAGE_OTHER,
	.queue_notified = blk_queue_notified,
};

static void
blk_fill_config(struct virtio_blk *blk)
{
	uint8_t *c = blk->dev.config;

	virtio_put64(c + CONFIG_CAPACITY, blk->disk->size / SECTOR_SIZE);
	virtio_put32(c + CONFIG_SIZE_MAX, VIRTIO_BLK_SIZE_MAX);
	virtio_put32(c + CONFIG_SEG_MAX, VIRTIO_BLK_SEG_MAX);
	virtio_put32(c + CONFIG_BLK_SIZE, SECTOR_SIZE);
	virtio_put32(c + CONFIG_MAX_DISCARD_SECTORS, MAX_DISCARD_SECTORS);
	virtio_put32(c + CONFIG_MAX_DISCARD_SEG, VIRTIO_BLK_DISCARD_SEGS);
	virtio_put32(c + CONFIG_DISCARD_ALIGNMENT, 8); /* 4 KiB: what hole punching frees */
	virtio_put32(c + CONFIG_MAX_ZEROES_SECTORS, MAX_DISCARD_SECTORS);
	virtio_put32(c + CONFIG_MAX_ZEROES_SEG, VIRTIO_BLK_DISCARD_SEGS);
	c[CONFIG_ZEROES_MAY_UNMAP] = 0;
}

/* The serial: the image's file name, which the guest sees in /sys/block/vdX/serial. */
static void
blk_default_serial(struct virtio_blk *blk, const char *serial)
{
	const char *name = serial;

	if (name == NULL) {
		name = strrchr(blk->disk->name, '/');
		name = name ? name + 1 : blk->disk->name;
	}
	memcpy(blk->serial, name, strnlen(name, VIRTIO_BLK_ID_BYTES)); /* truncated to what fits */
}

int
virtio_blk_add(struct vm *vm, int index, struct disk *disk, const char *serial)
{
	struct virtio_blk *blk = calloc(1, sizeof(*blk));
	uint64_t features = VIRTIO_BLK_F_SIZE_MAX | VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_FLUSH;
	char name[32];

	if (blk == NULL) {
		log_warn("disk %s", disk->name);
		disk_close(disk);
		return -1;
	}
	if (disk->writable)
		features |= VIRTIO_BLK_F_DISCARD | VIRTIO_BLK_F_WRITE_ZEROES;
	else
		features |= VIRTIO_BLK_F_RO;
	blk->disk = disk;
	snprintf(name, sizeof(name), "virtio-blk%d", index);
	if (virtio_device_init(&blk->dev, vm, &virtio_blk_ops, name, 1, features, CONFIG_BYTES) < 0)
		return -1;
	blk_default_serial(blk, serial);
	blk_fill_config(blk);
	if (virtio_pci_add(vm, &blk->dev) < 0) {
		log_warnx("disk %s: cannot add its virtio-blk device", disk->name);
		return -1;
	}
	return 0;
}
