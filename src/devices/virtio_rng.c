/*
 * virtio-rng (virtio 1.x, 5.4): fills the guest's buffers from the host's
 * getrandom(2).
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

struct virtio_rng {
	struct virtio_device dev;
	struct virtq_chain chain;
};

/* Returns the bytes written, or -1 when getrandom failed. */
static long
rng_fill(struct virtq_chain *chain)
{
	uint64_t written = 0;

	for (uint32_t i = chain->nout; i < chain->nout + chain->nin; i++) {
		size_t done = 0;

		while (done < chain->iov[i].iov_len) {
			ssize_t n = getrandom((uint8_t *)chain->iov[i].iov_base + done, chain->iov[i].iov_len - done, 0);

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

static void
rng_queue_notified(struct virtio_device *dev, int queue)
{
	struct virtio_rng *rng = (struct virtio_rng *)dev;
	struct virtq *q = &dev->queues[queue];
	int rc;

	do {
		while ((rc = virtq_pop(q, &rng->chain)) == 1) {
			long written;

			if (rng->chain.nout) {
				virtio_device_error(dev, "readable buffer in a request for randomness");
				return;
			}
			written = rng_fill(&rng->chain);
			if (written < 0) {
				log_warn("%s: getrandom", dev->name);
				written = 0;
			}
			virtq_push(q, rng->chain.head, (uint32_t)written);
		}
		if (rc < 0) {
			virtio_device_error(dev, "queue %d: %s", queue, q->error);
			return;
		}
	} while (virtq_arm_notification(q));
	virtio_queue_interrupt(dev, queue);
}

static const struct virtio_device_ops virtio_rng_ops = {
	.name = "virtio-rng",
	.device_id = VIRTIO_ID_RNG,
	.pci_class = PCI_CLASS_OTHER,
	.queue_notified = rng_queue_notified,
};

int
virtio_rng_add(struct vm *vm)
{
	struct virtio_rng *rng = calloc(1, sizeof(*rng));

	if (rng == NULL) {
		log_warn("virtio-rng");
		return -1;
	}
	if (virtio_device_init(&rng->dev, vm, &virtio_rng_ops, "virtio-rng", 1, 0, 0) < 0 ||
	    virtio_pci_add(vm, &rng->dev) < 0) {
		log_warnx("cannot add the virtio-rng device");
		return -1;
	}
	return 0;
}
