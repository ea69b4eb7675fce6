/* virtio-net on a tap device. */
#ifndef VMD_VIRTIO_NET_H
#define VMD_VIRTIO_NET_H

#include <stdbool.h>
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

/*
 * The real device on a datagram socket instead of a tap (one frame, with its
 * virtio-net header, per message; no offloads to set), without a transport:
 * for the unit tests and the fuzz target, which drive it through its ops
 * (dev->ops) over a guest RAM of their own.  features: what to offer.
 */
struct virtio_device *virtio_net_on_socket(struct vm *vm, int fd, uint64_t features);
/* Frames the guest's receive buffers could never hold (dropped, the buffers kept). */
uint64_t virtio_net_rx_dropped(const struct virtio_device *dev);
/* Frees a device of virtio_net_on_socket whose I/O thread never ran. */
void virtio_net_free(struct virtio_device *dev);

#endif
