/*
 * The virtio device core: status machine, feature negotiation, reset, and
 * the per-device I/O thread.  Guest notifications arrive on eventfds that
 * KVM signals directly (ioeventfd), so a vCPU never waits for a device; the
 * I/O thread serves the queue and interrupts through the transport.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/virtio.h"
#include "vm/sandbox.h"
#include "vm/vm.h"

#define EXTRA_EVENT VIRTIO_MAX_QUEUES /* epoll tag of the extra fd */

bool
virtio_has_feature(const struct virtio_device *dev, uint64_t feature)
{
	return (dev->driver_features & feature) != 0;
}

bool
virtio_device_live(const struct virtio_device *dev)
{
	unsigned status = atomic_load(&dev->status);

	return (status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_NEEDS_RESET);
}

void
virtio_device_error(struct virtio_device *dev, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	if (atomic_fetch_or(&dev->status, VIRTIO_STATUS_NEEDS_RESET) & VIRTIO_STATUS_NEEDS_RESET)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!dev->error_logged) {
		log_warnx("%s: %s; the device needs a reset", dev->name, why);
		dev->error_logged = true;
	}
	atomic_fetch_add(&dev->config_generation, 1);
	dev->transport.interrupt(dev, dev->config_vector, true);
}

void
virtio_queue_interrupt(struct virtio_device *dev, int queue)
{
	struct virtq *q = &dev->queues[queue];

	if (virtq_should_interrupt(q))
		dev->transport.interrupt(dev, q->msix_vector, false);
}

void
virtio_poll_extra(struct virtio_device *dev, bool on)
{
	struct epoll_event ev = { .events = on ? EPOLLIN : 0, .data.u32 = EXTRA_EVENT };

	if (dev->extra_fd < 0 || dev->extra_polled == on)
		return;
	if (epoll_ctl(dev->epoll_fd, EPOLL_CTL_MOD, dev->extra_fd, &ev) < 0)
		log_warn("%s: epoll", dev->name);
	dev->extra_polled = on;
}

/* Wakes the I/O thread for every queue, for buffers added before the driver was ready. */
static void
virtio_kick_all(struct virtio_device *dev)
{
	uint64_t one = 1;

	for (int i = 0; i < dev->nqueues; i++)
		if (write(dev->queues[i].kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_warn("%s: queue %d kick", dev->name, i);
}

/* Caller holds dev->lock. */
static void
virtio_reset_locked(struct virtio_device *dev)
{
	for (int i = 0; i < dev->nqueues; i++) {
		struct virtq *q = &dev->queues[i];

		virtq_stop(q);
		q->size = VIRTQ_DEFAULT_SIZE;
		q->enabled = false;
		q->msix_vector = VIRTIO_NO_VECTOR;
		q->desc_gpa = q->avail_gpa = q->used_gpa = 0;
	}
	dev->driver_features = 0;
	dev->device_feature_select = dev->driver_feature_select = 0;
	dev->config_vector = VIRTIO_NO_VECTOR;
	dev->queue_select = 0;
	dev->error_logged = false;
	if (dev->ops->reset)
		dev->ops->reset(dev);
	atomic_store(&dev->status, 0);
}

void
virtio_reset(struct virtio_device *dev)
{
	pthread_mutex_lock(&dev->lock);
	virtio_reset_locked(dev);
	pthread_mutex_unlock(&dev->lock);
}

static bool
virtio_features_acceptable(struct virtio_device *dev)
{
	if (dev->driver_features & ~dev->device_features) {
		log_warnx("%s: the driver accepted features %#llx that were not offered", dev->name,
			  (unsigned long long)(dev->driver_features & ~dev->device_features));
		return false;
	}
	if (!(dev->driver_features & VIRTIO_F_VERSION_1)) {
		log_warnx("%s: the driver does not speak virtio 1.0 (legacy drivers are not supported)", dev->name);
		return false;
	}
	return true;
}

/* DRIVER_OK: the rings are final; check and map them.  Caller holds dev->lock. */
static void
virtio_start_locked(struct virtio_device *dev)
{
	bool event_idx = virtio_has_feature(dev, VIRTIO_F_EVENT_IDX);

	for (int i = 0; i < dev->nqueues; i++) {
		struct virtq *q = &dev->queues[i];

		if (q->enabled && virtq_start(q, dev->vm, event_idx) < 0) {
			virtio_device_error(dev, "queue %d: %s", i, q->error);
			return;
		}
	}
	if (dev->ops->start && dev->ops->start(dev) < 0) {
		virtio_device_error(dev, "cannot start");
		return;
	}
	virtio_kick_all(dev);
}

void
virtio_set_status(struct virtio_device *dev, uint8_t value)
{
	unsigned old;

	if (value == 0) {
		virtio_reset(dev);
		return;
	}
	pthread_mutex_lock(&dev->lock);
	old = atomic_load(&dev->status);
	if ((value & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK) &&
	    !virtio_features_acceptable(dev))
		value &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK; /* the driver reads it back and gives up */
	/* NEEDS_RESET is the device's bit: the driver cannot clear it. */
	atomic_store(&dev->status, value | (old & VIRTIO_STATUS_NEEDS_RESET));
	if ((value & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK))
		virtio_start_locked(dev);
	pthread_mutex_unlock(&dev->lock);
}

static void
virtio_serve_queue(struct virtio_device *dev, int queue)
{
	uint64_t count;

	if (read(dev->queues[queue].kick_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_warn("%s: queue %d notification", dev->name, queue);
	/* A pause is coming: the kick is not lost, virtio_resume_all() kicks every queue. */
	if (atomic_load(&dev->pausing))
		return;
	pthread_mutex_lock(&dev->lock);
	/* Paused: the kick is not lost, virtio_resume_all() kicks every queue. */
	if (!dev->paused && virtio_device_live(dev) && dev->queues[queue].running)
		dev->ops->queue_notified(dev, queue);
	pthread_mutex_unlock(&dev->lock);
}

static void
virtio_serve_extra(struct virtio_device *dev)
{
	if (atomic_load(&dev->pausing))
		return; /* the pause takes the lock and stops the polling */
	pthread_mutex_lock(&dev->lock);
	if (!dev->paused && virtio_device_live(dev))
		dev->ops->extra_ready(dev);
	else
		virtio_poll_extra(dev, false); /* until ready or resumed: see virtio_start_locked, virtio_resume_all */
	pthread_mutex_unlock(&dev->lock);
}

void
virtio_pause_all(struct vm *vm)
{
	/*
	 * Taking the lock waits for the request in hand: the I/O thread serves
	 * under it.  pausing stops it from taking the lock again first, which
	 * a busy queue would otherwise do (a mutex is not fair).
	 */
	for (struct virtio_device *dev = vm->virtio_devices; dev; dev = dev->next) {
		atomic_store(&dev->pausing, true);
		pthread_mutex_lock(&dev->lock);
		dev->paused = true;
		virtio_poll_extra(dev, false);
		atomic_store(&dev->pausing, false);
		pthread_mutex_unlock(&dev->lock);
	}
}

void
virtio_resume_all(struct vm *vm)
{
	for (struct virtio_device *dev = vm->virtio_devices; dev; dev = dev->next) {
		pthread_mutex_lock(&dev->lock);
		dev->paused = false;
		if (virtio_device_live(dev)) {
			virtio_kick_all(dev);
			virtio_poll_extra(dev, true);
		}
		pthread_mutex_unlock(&dev->lock);
	}
}

static void *
virtio_io_thread(void *arg)
{
	struct virtio_device *dev = arg;
	struct epoll_event events[VIRTIO_MAX_QUEUES + 1];

	if (vm_sandbox_thread(SANDBOX_ROLE_DEVICE) < 0) {
		vm_request_exit(dev->vm, VM_EXIT_ERROR);
		return NULL;
	}
	for (;;) {
		int n = epoll_wait(dev->epoll_fd, events, VIRTIO_MAX_QUEUES + 1, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_warn("%s: epoll_wait", dev->name);
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			if (events[i].data.u32 == EXTRA_EVENT)
				virtio_serve_extra(dev);
			else
				virtio_serve_queue(dev, (int)events[i].data.u32);
		}
	}
}

int
virtio_device_init(struct virtio_device *dev, struct vm *vm, const struct virtio_device_ops *ops,
		   const char *name, int nqueues, uint64_t features, uint32_t config_size)
{
	dev->ops = ops;
	dev->vm = vm;
	snprintf(dev->name, sizeof(dev->name), "%s", name);
	dev->nqueues = nqueues;
	dev->device_features = features | VIRTIO_F_VERSION_1 | VIRTIO_F_EVENT_IDX | VIRTIO_F_INDIRECT_DESC;
	dev->config_size = config_size;
	dev->extra_fd = -1;
	dev->epoll_fd = -1;
	pthread_mutex_init(&dev->lock, NULL);
	atomic_init(&dev->status, 0);
	atomic_init(&dev->config_generation, 0);
	atomic_init(&dev->pausing, false);
	for (int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		dev->queues[i].kick_fd = -1;
	for (int i = 0; i < nqueues; i++) {
		dev->queues[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (dev->queues[i].kick_fd < 0) {
			log_warn("%s: eventfd", name);
			return -1;
		}
	}
	virtio_reset_locked(dev);
	return 0;
}

int
virtio_device_run(struct virtio_device *dev)
{
	sigset_t all, old;
	int rc;

	dev->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (dev->epoll_fd < 0) {
		log_warn("%s: epoll", dev->name);
		return -1;
	}
	for (int i = 0; i < dev->nqueues; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };

		if (epoll_ctl(dev->epoll_fd, EPOLL_CTL_ADD, dev->queues[i].kick_fd, &ev) < 0) {
			log_warn("%s: epoll", dev->name);
			return -1;
		}
	}
	if (dev->extra_fd >= 0) {
		struct epoll_event ev = { .events = 0, .data.u32 = EXTRA_EVENT };

		if (epoll_ctl(dev->epoll_fd, EPOLL_CTL_ADD, dev->extra_fd, &ev) < 0) {
			log_warn("%s: epoll", dev->name);
			return -1;
		}
	}
	dev->next = dev->vm->virtio_devices;
	dev->vm->virtio_devices = dev;
	/* Signals belong to the event thread and the vCPU kicks, not to device threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&dev->thread, NULL, virtio_io_thread, dev);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		log_warn("%s: cannot start its I/O thread", dev->name);
		return -1;
	}
	return 0;
}

bool
virtio_budget_spend(struct virtio_budget *budget, uint64_t bytes)
{
	budget->bytes = bytes < budget->bytes ? budget->bytes - bytes : 0;
	if (budget->requests > 0)
		budget->requests--;
	return budget->requests > 0 && budget->bytes > 0;
}

void
virtio_queue_yield(struct virtio_device *dev, int queue)
{
	uint64_t one = 1;

	/* The eventfd is the queue's own doorbell: the I/O thread sees it after its other events. */
	if (write(dev->queues[queue].kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("%s: queue %d kick", dev->name, queue);
}

int
virtio_serve_requests(struct virtio_device *dev, int queue, struct virtq_chain *chain, virtio_serve_fn *serve)
{
	struct virtq *q = &dev->queues[queue];
	struct virtio_budget budget = VIRTIO_BUDGET;
	int rc;

	do {
		while ((rc = virtq_pop(q, chain)) == 1) {
			long moved = serve(dev, queue, chain);

			if (moved < 0)
				return -1;
			if (!virtio_budget_spend(&budget, (uint64_t)moved)) {
				virtio_queue_yield(dev, queue);
				return 1;
			}
		}
		if (rc < 0) {
			virtio_device_error(dev, "queue %d: %s", queue, q->error);
			return -1;
		}
	} while (virtq_arm_notification(q));
	return 0;
}
