/*
 * virtio-rng, the real device against a fake driver (fake_driver.h): a
 * request gets at most 64 KiB however much RAM its chain names, and one
 * notification serves at most the call's budget before the device comes
 * back for the rest.
 */
#include "devices/virtio_rng.h"
#include "unit/fake_driver.h"

#define RNG_REQUEST_MAX (64 * 1024)

static struct virtio_device *
rng_make(struct fake_driver *g, uint16_t qsize)
{
	struct virtio_device *dev;

	fake_ram(g);
	dev = virtio_rng_create(&g->vm);
	CHECK(dev != NULL);
	fake_start(g, dev, VIRTIO_F_EVENT_IDX, qsize);
	return dev;
}

static void
rng_request_is_capped(void)
{
	struct fake_driver g;
	uint64_t half = FAKE_RAM_SIZE / 2;
	uint32_t id, len;
	uint16_t d;

	rng_make(&g, 16);
	/* Three descriptors, each the upper half of RAM: 6 MiB asked in one request. */
	d = fake_desc(&g, 0, half, (uint32_t)half, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	fake_desc(&g, 0, half, (uint32_t)half, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	fake_desc(&g, 0, half, (uint32_t)half, VIRTQ_DESC_F_WRITE, 0);
	fake_post(&g, 0, d);
	fake_notify(&g, 0);
	CHECK(fake_used_idx(&g, 0) == 1);
	fake_used(&g, 0, 0, &id, &len);
	CHECK(id == d && len == RNG_REQUEST_MAX);
	fake_free(&g);
}

static void
rng_notification_is_bounded(void)
{
	struct fake_driver g;
	int requests = VIRTIO_BUDGET_REQUESTS + 30;

	rng_make(&g, 256);
	for (int i = 0; i < requests; i++)
		fake_post_buffer(&g, 0, 16, true);
	fake_notify(&g, 0);
	CHECK(fake_used_idx(&g, 0) == VIRTIO_BUDGET_REQUESTS);
	CHECK(g.interrupts == 1);     /* for what it did */
	CHECK(fake_kicked(&g, 0));    /* and it comes back */
	fake_notify(&g, 0);
	CHECK(fake_used_idx(&g, 0) == requests && !fake_kicked(&g, 0));
	fake_free(&g);
}

static void
rng_bytes_budget_bounds_a_notification(void)
{
	struct fake_driver g;
	uint64_t per_call = VIRTIO_BUDGET_BYTES / RNG_REQUEST_MAX, table = FAKE_BUFFERS;

	/*
	 * Requests of 64 KiB each, every one the same indirect table of 16
	 * buffers of 4 KiB: the byte budget ends the call before the count does.
	 */
	CHECK(per_call < VIRTIO_BUDGET_REQUESTS);
	rng_make(&g, 256);
	for (int b = 0; b < 16; b++) {
		struct virtq_desc d = { .addr = FAKE_BUFFERS + (uint64_t)(b + 1) * FAKE_BUFFER_STRIDE,
					.len = FAKE_BUFFER_STRIDE,
					.flags = VIRTQ_DESC_F_WRITE | (b < 15 ? VIRTQ_DESC_F_NEXT : 0),
					.next = (uint16_t)(b + 1) };

		memcpy(fake_at(&g, table + 16 * (uint64_t)b), &d, sizeof(d));
	}
	for (uint64_t i = 0; i < per_call + 4; i++)
		fake_post(&g, 0, fake_desc(&g, 0, table, 16 * 16, VIRTQ_DESC_F_INDIRECT, 0));
	fake_notify(&g, 0);
	CHECK(fake_used_idx(&g, 0) == per_call && fake_kicked(&g, 0));
	fake_notify(&g, 0);
	CHECK(fake_used_idx(&g, 0) == per_call + 4);
	fake_free(&g);
}

int
main(void)
{
	RUN_TEST(rng_request_is_capped);
	RUN_TEST(rng_notification_is_bounded);
	RUN_TEST(rng_bytes_budget_bounds_a_notification);
	TEST_EXIT();
}
