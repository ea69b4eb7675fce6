/*
 * The virtio device core without a transport: feature negotiation, the
 * status machine, starting queues at DRIVER_OK (refusing rings outside
 * guest RAM), NEEDS_RESET on a guest error and reset.  The transport's
 * interrupt is a counter; guest memory is a plain buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "devices/virtio.h"
#include "unit/check.h"
#include "vm/vm.h"

#define RAM_SIZE (1 << 20)

static struct vm vm;
static int interrupts, config_interrupts, resets;

static void
count_interrupt(struct virtio_device *dev, uint16_t vector, bool config_change)
{
	interrupts++;
	config_interrupts += config_change;
}

static void
count_reset(struct virtio_device *dev)
{
	resets++;
}

static void
ignore_queue(struct virtio_device *dev, int queue)
{
}

static const struct virtio_device_ops test_ops = {
	.name = "virtio-test",
	.device_id = 99,
	.queue_notified = ignore_queue,
	.reset = count_reset,
};

static void
make_device(struct virtio_device *dev)
{
	memset(dev, 0, sizeof(*dev));
	if (vm.ram == NULL) {
		vm.ram = calloc(1, RAM_SIZE);
		vm.ram_size = vm.low_ram_size = RAM_SIZE;
	}
	CHECK(virtio_device_init(dev, &vm, &test_ops, "virtio-test0", 1, 1ULL << 3, 0) == 0);
	dev->transport.interrupt = count_interrupt;
	interrupts = config_interrupts = resets = 0;
}

static void
driver_setup(struct virtio_device *dev, uint64_t features)
{
	virtio_set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE);
	virtio_set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	dev->driver_features = features;
	virtio_set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
}

static void
core_offers_ring_features(void)
{
	struct virtio_device dev;

	make_device(&dev);
	CHECK(dev.device_features & VIRTIO_F_VERSION_1);
	CHECK(dev.device_features & VIRTIO_F_EVENT_IDX);
	CHECK(dev.device_features & VIRTIO_F_INDIRECT_DESC);
	CHECK(dev.device_features & (1ULL << 3));
	CHECK(atomic_load(&dev.status) == 0 && dev.queues[0].size == VIRTQ_DEFAULT_SIZE);
}

static void
core_negotiates_features(void)
{
	struct virtio_device dev;

	make_device(&dev);
	driver_setup(&dev, VIRTIO_F_VERSION_1 | (1ULL << 3));
	CHECK(atomic_load(&dev.status) & VIRTIO_STATUS_FEATURES_OK);

	/* A legacy driver (no VERSION_1) and one taking unoffered bits do not get FEATURES_OK. */
	make_device(&dev);
	driver_setup(&dev, 1ULL << 3);
	CHECK(!(atomic_load(&dev.status) & VIRTIO_STATUS_FEATURES_OK));
	make_device(&dev);
	driver_setup(&dev, VIRTIO_F_VERSION_1 | (1ULL << 40));
	CHECK(!(atomic_load(&dev.status) & VIRTIO_STATUS_FEATURES_OK));
}

static void
core_starts_queues_and_resets(void)
{
	struct virtio_device dev;
	struct virtq *q = &dev.queues[0];

	make_device(&dev);
	driver_setup(&dev, VIRTIO_F_VERSION_1 | VIRTIO_F_EVENT_IDX);
	q->size = 16;
	q->desc_gpa = 0x1000;
	q->avail_gpa = 0x2000;
	q->used_gpa = 0x3000;
	q->enabled = true;
	virtio_set_status(&dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
				       VIRTIO_STATUS_DRIVER_OK);
	CHECK(q->running && q->event_idx && virtio_device_live(&dev));

	/* A guest error: NEEDS_RESET, a config interrupt, and the driver cannot clear it. */
	virtio_device_error(&dev, "test error %d", 1);
	virtio_device_error(&dev, "test error %d", 2); /* reported once */
	CHECK(atomic_load(&dev.status) & VIRTIO_STATUS_NEEDS_RESET);
	CHECK(!virtio_device_live(&dev) && config_interrupts == 1);
	virtio_set_status(&dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
				       VIRTIO_STATUS_DRIVER_OK);
	CHECK(atomic_load(&dev.status) & VIRTIO_STATUS_NEEDS_RESET);

	/* Writing 0 resets everything. */
	virtio_set_status(&dev, 0);
	CHECK(atomic_load(&dev.status) == 0 && resets == 1);
	CHECK(!q->running && !q->enabled && q->desc_gpa == 0 && dev.driver_features == 0);
	CHECK(q->msix_vector == VIRTIO_NO_VECTOR && dev.config_vector == VIRTIO_NO_VECTOR);
}

static void
core_refuses_rings_outside_ram(void)
{
	struct virtio_device dev;
	struct virtq *q = &dev.queues[0];

	make_device(&dev);
	driver_setup(&dev, VIRTIO_F_VERSION_1);
	q->size = 16;
	q->desc_gpa = RAM_SIZE - 0x40; /* 256 bytes of descriptors do not fit */
	q->avail_gpa = 0x2000;
	q->used_gpa = 0x3000;
	q->enabled = true;
	virtio_set_status(&dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
				       VIRTIO_STATUS_DRIVER_OK);
	CHECK(!q->running && (atomic_load(&dev.status) & VIRTIO_STATUS_NEEDS_RESET));
}

int
main(void)
{
	RUN_TEST(core_offers_ring_features);
	RUN_TEST(core_negotiates_features);
	RUN_TEST(core_starts_queues_and_resets);
	RUN_TEST(core_refuses_rings_outside_ram);
	free(vm.ram);
	TEST_EXIT();
}
