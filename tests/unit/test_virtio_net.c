/*
 * virtio-net's receive and transmit paths, the real device code on a
 * datagram socketpair standing in for the tap, against a fake driver
 * (fake_driver.h).  The spinning receive of issue 12: a guest that posts
 * receive buffers too small for the next frame must not keep the device in
 * one call (nor hold its lock, so that pause and reset return); the device
 * waits for the guest's next buffers, and drops a frame that the guest's
 * whole ring could never hold.  Every loop is bounded by the call's budget.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>

#include "devices/virtio_net.h"
#include "unit/fake_driver.h"

#define NET_F_MRG_RXBUF (1ULL << 15)
#define RX		0
#define TX		1
#define HDR		VIRTIO_NET_HDR_BYTES

struct net_test {
	struct fake_driver g;
	int peer; /* the far end of the "tap" */
};

static void
net_make(struct net_test *t, uint64_t features, uint16_t qsize, bool thread)
{
	int sv[2], size = 1 << 20;

	fake_ram(&t->g);
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	t->peer = sv[1];
	t->g.dev = virtio_net_on_socket(&t->g.vm, sv[0], NET_F_MRG_RXBUF);
	CHECK(t->g.dev != NULL);
	if (thread)
		CHECK(virtio_device_run(t->g.dev) == 0);
	else
		fake_epoll(t->g.dev);
	fake_start(&t->g, t->g.dev, features, qsize);
}

static void
net_free(struct net_test *t)
{
	close(t->g.dev->extra_fd);
	close(t->g.dev->epoll_fd);
	virtio_net_free(t->g.dev);
	close(t->peer);
	free(t->g.vm.ram);
}

/* A frame as the tap hands it over: the virtio-net header, then len bytes of a pattern. */
static void
net_send(struct net_test *t, size_t len, uint8_t seed)
{
	uint8_t frame[HDR + 4096] = { 0 };

	CHECK(len <= 4096);
	for (size_t i = 0; i < len; i++)
		frame[HDR + i] = (uint8_t)(seed + i);
	CHECK(send(t->peer, frame, HDR + len, MSG_DONTWAIT) == (ssize_t)(HDR + len));
}

/* Whether the frame in used elements [first, first + n) holds len bytes of seed's pattern. */
static bool
net_received(struct net_test *t, uint16_t first, uint16_t n, size_t len, uint8_t seed)
{
	size_t at = 0; /* of the frame, header included */
	uint32_t id, used;
	uint16_t count;

	fake_used(&t->g, RX, first, &id, &used);
	memcpy(&count, fake_buffer(&t->g, RX, (uint16_t)id) + 10, 2);
	if (count != n)
		return false;
	for (uint16_t e = 0; e < n; e++) {
		uint8_t *buf;

		fake_used(&t->g, RX, (uint16_t)(first + e), &id, &used);
		buf = fake_buffer(&t->g, RX, (uint16_t)id);
		for (uint32_t i = 0; i < used; i++, at++)
			if (at >= HDR && buf[i] != (uint8_t)(seed + at - HDR))
				return false;
	}
	return at == HDR + len;
}

/* Runs fn in a thread; false when it has not returned within seconds. */
static bool
returns_within(void *(*fn)(void *), void *arg, int seconds)
{
	struct timespec deadline;
	pthread_t thread;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += seconds;
	CHECK(pthread_create(&thread, NULL, fn, arg) == 0);
	return pthread_timedjoin_np(thread, NULL, &deadline) == 0;
}

static void *
call_extra_ready(void *arg)
{
	fake_extra_ready(arg);
	return NULL;
}

/* A hang is a failure that no later test survives: say so and stop. */
static void
must_return(void *(*fn)(void *), void *arg, const char *what)
{
	if (!returns_within(fn, arg, 5)) {
		printf("  %s did not return: the device spins\n", what);
		printf("FAIL virtio-net (hung)\n");
		fflush(stdout);
		_exit(1);
	}
}

static void
net_rx_small_buffers_wait_for_more(void)
{
	struct net_test t;

	net_make(&t, VIRTIO_F_EVENT_IDX | NET_F_MRG_RXBUF, 16, false);
	for (int i = 0; i < 4; i++)
		fake_post_buffer(&t.g, RX, 64, true);
	net_send(&t, 1000, 7); /* 1012 bytes need 16 buffers of 64 */
	must_return(call_extra_ready, &t.g, "receive into buffers too small");
	CHECK(fake_used_idx(&t.g, RX) == 0 && virtio_net_rx_dropped(t.g.dev) == 0);
	/* It waits for the guest: the tap is not watched, and the guest's next buffer notifies. */
	CHECK(!t.g.dev->extra_polled);
	CHECK(fake_avail_event(&t.g, RX) == 4);
	must_return(call_extra_ready, &t.g, "a second look at the same buffers");
	CHECK(fake_used_idx(&t.g, RX) == 0);

	/* Enough buffers: the held frame goes in, over all 16. */
	for (int i = 0; i < 12; i++)
		fake_post_buffer(&t.g, RX, 64, true);
	fake_notify(&t.g, RX);
	CHECK(fake_used_idx(&t.g, RX) == 16);
	CHECK(net_received(&t, 0, 16, 1000, 7));
	CHECK(t.g.dev->extra_polled && t.g.interrupts > 0);
	net_free(&t);
}

static void
net_rx_frame_larger_than_the_ring_is_dropped(void)
{
	struct net_test t;

	net_make(&t, VIRTIO_F_EVENT_IDX | NET_F_MRG_RXBUF, 16, false);
	for (int i = 0; i < 16; i++)
		fake_post_buffer(&t.g, RX, 32, true); /* 512 bytes in a full ring */
	net_send(&t, 1000, 1);
	net_send(&t, 100, 2);
	must_return(call_extra_ready, &t.g, "receive into a full ring too small");
	/* The big one is dropped and counted; the guest keeps its buffers for the next. */
	CHECK(virtio_net_rx_dropped(t.g.dev) == 1);
	CHECK(fake_used_idx(&t.g, RX) == 4); /* 112 bytes in buffers of 32 */
	CHECK(net_received(&t, 0, 4, 100, 2));
	net_free(&t);
}

static void
net_rx_without_mergeable_buffers_drops_what_does_not_fit(void)
{
	struct net_test t;
	uint32_t id, len;

	net_make(&t, VIRTIO_F_EVENT_IDX, 16, false);
	fake_post_buffer(&t.g, RX, 256, true);
	net_send(&t, 1000, 3);
	net_send(&t, 100, 4);
	must_return(call_extra_ready, &t.g, "receive into one small buffer");
	CHECK(virtio_net_rx_dropped(t.g.dev) == 1);
	CHECK(fake_used_idx(&t.g, RX) == 1);
	fake_used(&t.g, RX, 0, &id, &len);
	CHECK(len == HDR + 100 && net_received(&t, 0, 1, 100, 4));
	net_free(&t);
}

static void
net_rx_budget_bounds_one_call(void)
{
	struct net_test t;
	int frames = VIRTIO_BUDGET_REQUESTS + 20;

	net_make(&t, VIRTIO_F_EVENT_IDX | NET_F_MRG_RXBUF, 256, false);
	for (int i = 0; i < 250; i++)
		fake_post_buffer(&t.g, RX, 128, true);
	for (int i = 0; i < frames; i++)
		net_send(&t, 60, (uint8_t)i);
	fake_extra_ready(&t.g);
	/* One call takes its share and leaves the tap watched for the rest. */
	CHECK(fake_used_idx(&t.g, RX) == VIRTIO_BUDGET_REQUESTS);
	CHECK(t.g.dev->extra_polled);
	fake_extra_ready(&t.g);
	CHECK(fake_used_idx(&t.g, RX) == frames);
	CHECK(net_received(&t, (uint16_t)(frames - 1), 1, 60, (uint8_t)(frames - 1)));
	net_free(&t);
}

static void
net_tx_budget_bounds_one_call(void)
{
	struct net_test t;
	uint8_t frame[HDR + 64];
	int frames = VIRTIO_BUDGET_REQUESTS + 50, got = 0;

	net_make(&t, VIRTIO_F_EVENT_IDX, 256, false);
	for (int i = 0; i < frames; i++) {
		uint16_t d = fake_post_buffer(&t.g, TX, HDR + 60, false);

		memset(fake_buffer(&t.g, TX, d), 0, HDR + 60);
	}
	fake_notify(&t.g, TX);
	CHECK(fake_used_idx(&t.g, TX) == VIRTIO_BUDGET_REQUESTS);
	CHECK(fake_kicked(&t.g, TX)); /* it comes back for the rest */
	fake_notify(&t.g, TX);
	CHECK(fake_used_idx(&t.g, TX) == frames && !fake_kicked(&t.g, TX));
	while (recv(t.peer, frame, sizeof(frame), MSG_DONTWAIT) == HDR + 60)
		got++;
	CHECK(got == frames);
	net_free(&t);
}

static void *
pause_all(void *arg)
{
	virtio_pause_all(arg);
	return NULL;
}

static void *
reset_device(void *arg)
{
	virtio_set_status(arg, 0);
	return NULL;
}

static void
wait_used(struct fake_driver *g, int queue, uint16_t want)
{
	for (int i = 0; i < 400 && fake_used_idx(g, queue) != want; i++)
		usleep(5000);
}

static double
thread_cpu_seconds(pthread_t thread)
{
	struct timespec ts;
	clockid_t clock;

	CHECK(pthread_getcpuclockid(thread, &clock) == 0);
	CHECK(clock_gettime(clock, &ts) == 0);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The case with the real I/O thread: it sleeps, and pause and the guest's reset return. */
static void
net_rx_spinning_guest_cannot_hang_pause(void)
{
	static struct net_test t; /* the I/O thread outlives this function */
	uint64_t one = 1;
	double before;

	net_make(&t, VIRTIO_F_EVENT_IDX | NET_F_MRG_RXBUF, 16, true);
	for (int i = 0; i < 4; i++)
		fake_post_buffer(&t.g, RX, 64, true);
	CHECK(write(t.g.dev->queues[RX].kick_fd, &one, sizeof(one)) == sizeof(one));
	usleep(50000);
	before = thread_cpu_seconds(t.g.dev->thread);
	net_send(&t, 1000, 9);
	usleep(300000);
	CHECK(thread_cpu_seconds(t.g.dev->thread) - before < 0.1); /* waiting, not spinning */
	must_return(pause_all, &t.g.vm, "virtio_pause_all");
	virtio_resume_all(&t.g.vm);

	/* The guest posts the rest and notifies, as its driver would: the frame arrives. */
	for (int i = 0; i < 12; i++)
		fake_post_buffer(&t.g, RX, 64, true);
	CHECK(write(t.g.dev->queues[RX].kick_fd, &one, sizeof(one)) == sizeof(one));
	wait_used(&t.g, RX, 16);
	CHECK(fake_used_idx(&t.g, RX) == 16 && net_received(&t, 0, 16, 1000, 9));

	/* Stuck again, then the guest's driver resets the device at shutdown. */
	for (int i = 0; i < 2; i++)
		fake_post_buffer(&t.g, RX, 64, true);
	CHECK(write(t.g.dev->queues[RX].kick_fd, &one, sizeof(one)) == sizeof(one));
	net_send(&t, 1000, 10);
	usleep(100000);
	must_return(reset_device, t.g.dev, "the driver's reset");
	CHECK(atomic_load(&t.g.dev->status) == 0);
	/* The I/O thread runs on; the device and its RAM stay for it. */
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN_TEST(net_rx_small_buffers_wait_for_more);
	RUN_TEST(net_rx_frame_larger_than_the_ring_is_dropped);
	RUN_TEST(net_rx_without_mergeable_buffers_drops_what_does_not_fit);
	RUN_TEST(net_rx_budget_bounds_one_call);
	RUN_TEST(net_tx_budget_bounds_one_call);
	RUN_TEST(net_rx_spinning_guest_cannot_hang_pause);
	TEST_EXIT();
}
