/* virtio-blk: a disk (src/disk) as a virtio block device. */
#ifndef VMD_VIRTIO_BLK_H
#define VMD_VIRTIO_BLK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "devices/virtio.h"

struct vm;
struct disk;
struct virtio_device;

/* Request types and status (virtio 1.x, 5.2.6). */
#define VIRTIO_BLK_T_IN		  0
#define VIRTIO_BLK_T_OUT	  1
#define VIRTIO_BLK_T_FLUSH	  4
#define VIRTIO_BLK_T_GET_ID	  8
#define VIRTIO_BLK_T_DISCARD	  11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK		  0
#define VIRTIO_BLK_S_IOERR	  1
#define VIRTIO_BLK_S_UNSUPP	  2
#define VIRTIO_BLK_ID_BYTES	  20
/* Data buffers per request: a chain's most, less header and status; with
 * indirect descriptors a 1 MiB request of scattered pages fits in one. */
#define VIRTIO_BLK_SEG_MAX	  (VIRTQ_CHAIN_MAX - 2)
#define VIRTIO_BLK_SIZE_MAX	  (1u << 20) /* bytes per data buffer */
#define VIRTIO_BLK_REQUEST_MAX	  ((uint64_t)VIRTIO_BLK_SEG_MAX * VIRTIO_BLK_SIZE_MAX) /* data bytes per request */
#define VIRTIO_BLK_DISCARD_SEGS	  32

/*
 * Adds virtio-blk device index (for messages) for disk, owned from now on,
 * on PCI.  A disk opened read-only makes a read-only device.  serial (up to
 * 20 bytes, the guest's /sys/block/vdX/serial) may be NULL: the image's
 * file name.
 */
int virtio_blk_add(struct vm *vm, int index, struct disk *disk, const char *serial);

/*
 * The parse of one request, exposed for the unit tests and the fuzz target:
 * handles the chain in iov (nout readable, then nin writable buffers)
 * against disk, and returns the bytes written into the writable buffers, or
 * -1 when the chain is malformed (the device must then be reset).
 */
struct virtio_blk_request {
	struct disk *disk;
	const char *serial;
	const struct iovec *iov;
	uint32_t nout, nin;
	uint64_t out_len, in_len;
	char error[160]; /* why, on -1 */
};
long virtio_blk_handle(struct virtio_blk_request *req);

#endif
