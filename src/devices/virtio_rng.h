/* virtio-rng: the host's randomness for the guest. */
#ifndef VMD_VIRTIO_RNG_H
#define VMD_VIRTIO_RNG_H

struct vm;
struct virtio_device;

int virtio_rng_add(struct vm *vm);
/* The device without a transport (virtio_rng_add puts it on PCI); for the unit tests too. */
struct virtio_device *virtio_rng_create(struct vm *vm);

#endif
