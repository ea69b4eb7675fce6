/*
 * virtio-rng (virtio 1.x, 5.4): fills the guest's buffers from the host's
 * getrandom(2).  The device may fill less than a buffer (virtio 1.x, 5.4.6.1; Linux reads the used length), so a
 * request gets at most RNG_REQUEST_MAX bytes: a chain may name all of guest
 * RAM, many times over.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "common/log.h"
#include "devices/virtio.h"
#include "devices/virtio_pci.h"
#include "devices/virtio_rng.h"

#define VIRTIO_ID_RNG	     4
#define PCI_CLASS_OTHER	     0x00ff
#define RNG_REQUEST_MAX	     (64 * 1024) /* Linux asks for a few dozen bytes at a time */

struct virtio_rng {
	struct virtio_device dev;
	struct virtq_chain chain;
};

/* Returns the bytes written (from the start of the chain, RNG_REQUEST_MAX at most), or -1 when getrandom failed. */
static long
rng_fill(struct virtq_chain *chain)
{
	uint64_t written = 0;

	for (uint32_t i = chain->nout; i < chain->nout + chain->nin && written < RNG_REQUEST_MAX; i++) {
		size_t want = chain->iov[i].iov_len, done = 0;

		if (want > RNG_REQUEST_MAX - written)
			want = RNG_REQUEST_MAX - written;
		while (done < want) {
			ssize_t n = getrandom((uint8_t *)chain->iov[i].iov_base + done, want - done, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -1;
			done += (size_t)n;
		}
		written += done;
	}
	return (long)written;
}

/* Serves one request (virtio_serve_fn). */
static long
rng_serve(struct virtio_device *dev, int queue, struct virtq_chain *chain)
{
	long written;

	if (chain->nout) {
		virtio_device_error(dev, "readable buffer in a request for randomness");
		return -1;
	}
	written = rng_fill(chain);
	if (written < 0) {
		log_warn("%s: getrandom", dev->name);
		written = 0;
	}
	virtq_push(&dev->queues[queue], chain->head, (uint32_t)written);
	return written;
}

static void
rng_queue_notified(struct virtio_device *dev, int queue)
{
	if (virtio_serve_requests(dev, queue, &((struct virtio_rng *)dev)->chain, rng_serve) >= 0)
		virtio_queue_interrupt(dev, queue);
}

static const struct virtio_device_ops virtio_rng_ops = {
	.name = "virtio-rng",
	.device_id = VIRTIO_ID_RNG,
	.pci_class = PCI_CLASS_OTHER,
	.queue_notified = rng_queue_notified,
};

struct virtio_device *
virtio_rng_create(struct vm *vm)
{
	struct virtio_rng *rng = calloc(1, sizeof(*rng));

	if (rng == NULL) {
		log_warn("virtio-rng");
		return NULL;
	}
	if (virtio_device_init(&rng->dev, vm, &virtio_rng_ops, "virtio-rng", 1, 0, 0) < 0) {
		free(rng);
		return NULL;
	}
	return &rng->dev;
}

int
virtio_rng_add(struct vm *vm)
{
	struct virtio_device *dev = virtio_rng_create(vm);

	if (dev == NULL || virtio_pci_add(vm, dev) < 0) {
		log_warnx("cannot add the virtio-rng device");
		return -1;
	}
	return 0;
}
