/* virtio-rng: the host's randomness for the guest. */
#ifndef VMD_VIRTIO_RNG_H
#define VMD_VIRTIO_RNG_H

struct vm;

int virtio_rng_add(struct vm *vm);

#endif
