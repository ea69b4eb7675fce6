/* virtio-net on a tap device. */
#ifndef VMD_VIRTIO_NET_H
#define VMD_VIRTIO_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct vm;
struct vm_tap;

#define VIRTIO_NET_HDR_BYTES 12 /* struct virtio_net_hdr with num_buffers: always, in virtio 1.x */

/* Adds NIC index (for messages) on the tap, owned from now on, on PCI. */
int virtio_net_add(struct vm *vm, int index, const struct vm_tap *tap);

/*
 * Checks the virtio-net header that starts a frame the guest sends (in iov),
 * exposed for the unit tests and the fuzz target: 0 when the tap may take
 * it, -1 with a reason when the guest broke the rules.
 */
int virtio_net_check_tx(const struct iovec *iov, uint32_t n, uint64_t len, uint64_t features, char *why,
			size_t whylen);

#endif
