/*
 * A guest's virtio driver for the unit tests, over a guest RAM of plain
 * memory: negotiates features, lays out each queue's rings, posts buffers
 * and reads what the device used.  The device is the real one, without a
 * transport: its interrupts only count, its queue handlers are called the
 * way the I/O thread calls them (under the device lock), or the real I/O
 * thread runs.
 */
#ifndef VMD_TEST_FAKE_DRIVER_H
#define VMD_TEST_FAKE_DRIVER_H

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "devices/virtio.h"
#include "unit/check.h"
#include "vm/vm.h"

#define FAKE_RAM_SIZE	 (4u << 20)
#define FAKE_RING_AREA	 0x10000 /* each queue's rings: 32 KiB from here */
#define FAKE_RING_STRIDE 0x8000
#define FAKE_BUFFERS	 0x100000 /* buffers from here; FAKE_BUFFER_STRIDE per descriptor */
#define FAKE_BUFFER_STRIDE 0x1000
#define FAKE_MAX_QSIZE	 256 /* what the buffer area has room for */

struct fake_driver {
	struct vm vm;
	struct virtio_device *dev;
	uint16_t avail_idx[VIRTIO_MAX_QUEUES];
	uint16_t next_desc[VIRTIO_MAX_QUEUES];
	int interrupts;
};

static struct fake_driver *fake_current; /* the interrupt callback's */

static inline void
fake_interrupt(struct virtio_device *dev, uint16_t vector, bool config_change)
{
	fake_current->interrupts++;
}

static inline uint64_t
fake_desc_gpa(int queue)
{
	return FAKE_RING_AREA + (uint64_t)queue * FAKE_RING_STRIDE;
}

static inline uint64_t
fake_avail_gpa(int queue)
{
	return fake_desc_gpa(queue) + 0x1000 * (VIRTQ_MAX_SIZE / 256);
}

static inline uint64_t
fake_used_gpa(int queue)
{
	return fake_avail_gpa(queue) + 0x1000;
}

/* Guest RAM for a device still to be made. */
static inline void
fake_ram(struct fake_driver *g)
{
	memset(g, 0, sizeof(*g));
	g->vm.ram = calloc(1, FAKE_RAM_SIZE);
	g->vm.ram_size = g->vm.low_ram_size = FAKE_RAM_SIZE;
	fake_current = g;
}

/*
 * What virtio_device_run does but the thread: an epoll set for the extra
 * fd, so that the device can start and stop watching it.
 */
static inline void
fake_epoll(struct virtio_device *dev)
{
	struct epoll_event ev = { .events = 0, .data.u32 = VIRTIO_MAX_QUEUES };

	dev->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	CHECK(dev->epoll_fd >= 0);
	if (dev->extra_fd >= 0)
		CHECK(epoll_ctl(dev->epoll_fd, EPOLL_CTL_ADD, dev->extra_fd, &ev) == 0);
}

/* The driver's side of initialisation, up to DRIVER_OK, queues of size qsize. */
static inline void
fake_start(struct fake_driver *g, struct virtio_device *dev, uint64_t features, uint16_t qsize)
{
	g->dev = dev;
	dev->transport.interrupt = fake_interrupt;
	virtio_set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	dev->driver_features = features | VIRTIO_F_VERSION_1;
	virtio_set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	CHECK(atomic_load(&dev->status) & VIRTIO_STATUS_FEATURES_OK);
	for (int i = 0; i < dev->nqueues; i++) {
		struct virtq *q = &dev->queues[i];

		q->size = qsize;
		q->desc_gpa = fake_desc_gpa(i);
		q->avail_gpa = fake_avail_gpa(i);
		q->used_gpa = fake_used_gpa(i);
		q->enabled = true;
	}
	virtio_set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
				       VIRTIO_STATUS_DRIVER_OK);
	CHECK(virtio_device_live(dev));
}

static inline uint8_t *
fake_at(struct fake_driver *g, uint64_t gpa)
{
	return g->vm.ram + gpa;
}

/* Where the buffer of descriptor desc of queue lies. */
static inline uint64_t
fake_buffer_gpa(int queue, uint16_t desc)
{
	return FAKE_BUFFERS + ((uint64_t)queue * FAKE_MAX_QSIZE + desc) * FAKE_BUFFER_STRIDE;
}

static inline uint8_t *
fake_buffer(struct fake_driver *g, int queue, uint16_t desc)
{
	return fake_at(g, fake_buffer_gpa(queue, desc));
}

/* Makes one descriptor (the next free one) and returns its index. */
static inline uint16_t
fake_desc(struct fake_driver *g, int queue, uint64_t gpa, uint32_t len, uint16_t flags, uint16_t next)
{
	struct virtq *q = &g->dev->queues[queue];
	uint16_t d = g->next_desc[queue]++ % q->size;
	struct virtq_desc desc = { .addr = gpa, .len = len, .flags = flags, .next = next };

	memcpy(fake_at(g, q->desc_gpa + 16 * (uint64_t)d), &desc, sizeof(desc));
	return d;
}

/* Makes the chain at head available (the device sees it at once: no notification). */
static inline void
fake_post(struct fake_driver *g, int queue, uint16_t head)
{
	struct virtq *q = &g->dev->queues[queue];
	uint16_t *avail = (uint16_t *)fake_at(g, q->avail_gpa);

	avail[2 + g->avail_idx[queue] % q->size] = head;
	__atomic_store_n(&avail[1], ++g->avail_idx[queue], __ATOMIC_RELEASE);
}

/* Posts one buffer of len bytes in the descriptor's own area; returns the descriptor. */
static inline uint16_t
fake_post_buffer(struct fake_driver *g, int queue, uint32_t len, bool writable)
{
	struct virtq *q = &g->dev->queues[queue];
	uint16_t d = g->next_desc[queue] % q->size;

	CHECK(len <= FAKE_BUFFER_STRIDE && q->size <= FAKE_MAX_QSIZE);
	fake_desc(g, queue, fake_buffer_gpa(queue, d), len, writable ? VIRTQ_DESC_F_WRITE : 0, 0);
	fake_post(g, queue, d);
	return d;
}

static inline uint16_t
fake_used_idx(struct fake_driver *g, int queue)
{
	return __atomic_load_n((uint16_t *)(fake_at(g, g->dev->queues[queue].used_gpa) + 2), __ATOMIC_ACQUIRE);
}

/* Used element i of queue: the head it returns and the bytes it wrote. */
static inline void
fake_used(struct fake_driver *g, int queue, uint16_t i, uint32_t *id, uint32_t *len)
{
	struct virtq *q = &g->dev->queues[queue];
	uint8_t *elem = fake_at(g, q->used_gpa + 4 + 8 * (uint64_t)(i % q->size));

	memcpy(id, elem, 4);
	memcpy(len, elem + 4, 4);
}

/* The index after which the device wants a notification (EVENT_IDX's avail_event). */
static inline uint16_t
fake_avail_event(struct fake_driver *g, int queue)
{
	struct virtq *q = &g->dev->queues[queue];
	uint16_t event;

	memcpy(&event, fake_at(g, q->used_gpa + 4 + 8 * (uint64_t)q->size), 2);
	return event;
}

/* A notification, served as the I/O thread serves one. */
static inline void
fake_notify(struct fake_driver *g, int queue)
{
	pthread_mutex_lock(&g->dev->lock);
	g->dev->ops->queue_notified(g->dev, queue);
	pthread_mutex_unlock(&g->dev->lock);
}

/* The extra fd is readable, served as the I/O thread serves it. */
static inline void
fake_extra_ready(struct fake_driver *g)
{
	pthread_mutex_lock(&g->dev->lock);
	g->dev->ops->extra_ready(g->dev);
	pthread_mutex_unlock(&g->dev->lock);
}

/* Whether the device kicked its own queue (virtio_queue_yield); consumes the kick. */
static inline bool
fake_kicked(struct fake_driver *g, int queue)
{
	uint64_t count = 0;

	return read(g->dev->queues[queue].kick_fd, &count, sizeof(count)) == sizeof(count) && count > 0;
}

/*
 * Frees guest RAM and a device whose I/O thread never ran; dev must be the
 * first member of the device's struct (as every device has it).
 */
static inline void
fake_free(struct fake_driver *g)
{
	for (int i = 0; i < g->dev->nqueues; i++)
		close(g->dev->queues[i].kick_fd);
	if (g->dev->epoll_fd >= 0)
		close(g->dev->epoll_fd);
	pthread_mutex_destroy(&g->dev->lock);
	free(g->dev);
	free(g->vm.ram);
}

#endif
