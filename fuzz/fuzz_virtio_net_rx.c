/*
 * libFuzzer target for virtio-net's receive path (and transmit, which shares
 * the device): frames arrive from a socketpair standing in for the tap and
 * go into receive rings that the guest made, the real device code walking
 * them.  The input:
 *   [0] queue size (1 to 256)    [1] features (mergeable buffers, EVENT_IDX)
 *   [2] [3] [4] where the descriptor, available and used rings lie (pages)
 *   [5] how many frames (up to 15)  [6] [7] what the guest adds to its
 *   available index between rounds
 *   then two bytes of length per frame, then guest RAM (the frames' bytes
 *   are taken from it too).
 * The device serves the tap and both queues for a few rounds.  Nothing may
 * crash or reach outside guest RAM, and every call returns (the fuzzer's
 * -timeout catches a spin); afterwards pause and reset must still work.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/virtio.h"
#include "devices/virtio_net.h"
#include "vm/vm.h"

#define RAM_SIZE	(64 * 1024)
#define HEADER_BYTES	8
#define FRAME_MAX_FUZZ	(RAM_SIZE / 2)
#define NET_F_MRG_RXBUF (1ULL << 15)
#define RX		0
#define TX		1

static void
ignore_interrupt(struct virtio_device *dev, uint16_t vector, bool config_change)
{
}

static void
serve(struct virtio_device *dev, int what)
{
	pthread_mutex_lock(&dev->lock);
	if (virtio_device_live(dev)) {
		if (what < 0)
			dev->ops->extra_ready(dev);
		else
			dev->ops->queue_notified(dev, what);
	}
	pthread_mutex_unlock(&dev->lock);
}

static struct virtio_device *
start_device(struct vm *vm, int fd, const uint8_t *data)
{
	struct virtio_device *dev = virtio_net_on_socket(vm, fd, NET_F_MRG_RXBUF);
	struct epoll_event ev = { .events = 0, .data.u32 = VIRTIO_MAX_QUEUES };

	if (dev == NULL)
		abort();
	dev->transport.interrupt = ignore_interrupt;
	dev->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (dev->epoll_fd < 0 || epoll_ctl(dev->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
		abort();
	virtio_set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	dev->driver_features = VIRTIO_F_VERSION_1 | (data[1] & 1 ? NET_F_MRG_RXBUF : 0) |
			       (data[1] & 2 ? VIRTIO_F_EVENT_IDX : 0);
	virtio_set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	for (int i = 0; i < 2; i++) {
		struct virtq *q = &dev->queues[i];

		q->size = (uint16_t)(1u << (data[0] % 9));
		/* The transmit queue's rings a little further on: both may overlap anything. */
		q->desc_gpa = ((uint64_t)data[2] << 8) + 0x1000 * (uint64_t)i;
		q->avail_gpa = ((uint64_t)data[3] << 8) + 0x1000 * (uint64_t)i;
		q->used_gpa = ((uint64_t)data[4] << 8) + 0x1000 * (uint64_t)i;
		q->enabled = true;
	}
	virtio_set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
				       VIRTIO_STATUS_DRIVER_OK);
	return dev;
}

/* The guest posts more: it moves its available index. */
static void
guest_posts(struct virtio_device *dev, struct vm *vm, uint8_t more)
{
	struct virtq *q = &dev->queues[RX];
	uint16_t idx;

	if (!q->running)
		return;
	memcpy(&idx, vm->ram + q->avail_gpa + 2, 2);
	idx = (uint16_t)(idx + more % 8);
	memcpy(vm->ram + q->avail_gpa + 2, &idx, 2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm vm = { 0 };
	struct virtio_device *dev;
	size_t nframes, ram_at, ram_len;
	int sv[2];

	if (size < HEADER_BYTES)
		return 0;
	nframes = data[5] % 16;
	ram_at = HEADER_BYTES + 2 * nframes;
	if (size < ram_at)
		return 0;
	ram_len = size - ram_at < RAM_SIZE ? size - ram_at : RAM_SIZE;
	vm.ram = calloc(1, RAM_SIZE);
	vm.ram_size = vm.low_ram_size = RAM_SIZE;
	memcpy(vm.ram, data + ram_at, ram_len);
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	dev = start_device(&vm, sv[0], data);

	/* The tap's frames: their bytes from guest RAM's image, as good as any. */
	for (size_t i = 0; i < nframes; i++) {
		size_t len = (data[HEADER_BYTES + 2 * i] | (size_t)data[HEADER_BYTES + 2 * i + 1] << 8) % FRAME_MAX_FUZZ;

		if (send(sv[1], vm.ram + (i * 997) % (RAM_SIZE - FRAME_MAX_FUZZ), len, MSG_DONTWAIT) < 0)
			break;
	}
	for (int round = 0; round < 3; round++) {
		serve(dev, -1);
		serve(dev, RX);
		serve(dev, TX);
		guest_posts(dev, &vm, data[6 + round % 2]);
	}
	serve(dev, RX);

	/* Whatever the guest did, the device lets go: pause and reset return. */
	vm.virtio_devices = dev;
	virtio_pause_all(&vm);
	virtio_set_status(dev, 0);

	close(sv[0]);
	close(sv[1]);
	close(dev->epoll_fd);
	virtio_net_free(dev);
	free(vm.ram);
	return 0;
}
