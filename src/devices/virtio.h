/*
 * The virtio core (virtio 1.x), independent of the transport: split
 * virtqueues, feature negotiation, the device status machine and reset, and
 * the I/O thread that serves a device's queues.  A device is a small ops
 * table plus the struct virtio_device it embeds; the transport
 * (virtio_pci.c) connects it to the guest.
 *
 * Guest memory is untrusted: every ring and buffer address goes through
 * guest_ptr(), descriptors are copied before they are checked, and a queue
 * that breaks the rules puts the device into DEVICE_NEEDS_RESET.
 */
#ifndef VMD_VIRTIO_H
#define VMD_VIRTIO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/le.h"

struct vm;

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE  0x01
#define VIRTIO_STATUS_DRIVER	   0x02
#define VIRTIO_STATUS_DRIVER_OK	   0x04
#define VIRTIO_STATUS_FEATURES_OK  0x08
#define VIRTIO_STATUS_NEEDS_RESET  0x40
#define VIRTIO_STATUS_FAILED	   0x80

/* Transport and ring feature bits. */
#define VIRTIO_F_INDIRECT_DESC	   (1ULL << 28)
#define VIRTIO_F_EVENT_IDX	   (1ULL << 29)
#define VIRTIO_F_VERSION_1	   (1ULL << 32)

/* Descriptor flags. */
#define VIRTQ_DESC_F_NEXT	   1
#define VIRTQ_DESC_F_WRITE	   2
#define VIRTQ_DESC_F_INDIRECT	   4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

#define VIRTQ_MAX_SIZE		   1024 /* largest queue the core accepts */
#define VIRTQ_DEFAULT_SIZE	   256	/* what devices offer */
#define VIRTQ_CHAIN_MAX		   1024 /* most buffers in one chain, indirect included */
#define VIRTIO_MAX_QUEUES	   4
#define VIRTIO_CONFIG_MAX	   64	/* device config space bytes */
#define VIRTIO_NO_VECTOR	   0xffff

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* One split virtqueue, as the driver configured it and as the device walks it. */
struct virtq {
	/* Set by the driver through the transport. */
	uint16_t size;
	uint16_t msix_vector;
	bool enabled;
	uint64_t desc_gpa, avail_gpa, used_gpa;

	/* The device's side, valid while the queue runs (after virtq_start). */
	const struct vm *vm;
	const struct virtq_desc *desc;
	uint16_t *avail;      /* flags, idx, ring[size], used_event */
	uint8_t *used;	      /* flags, idx, ring[size] of {id, len}, avail_event */
	uint16_t last_avail;  /* next avail entry the device takes */
	uint16_t avail_seen;  /* the driver's available index when the device last read it */
	uint16_t used_idx;    /* next used entry the device fills (published or not) */
	uint16_t signalled_used; /* used index at the last interrupt decision */
	bool signalled_valid;
	bool event_idx;
	bool running;
	int kick_fd;	      /* eventfd the guest's notifications land on */
	char error[160];      /* why the queue broke, when virtq_pop returned -1 */
};

/*
 * One descriptor chain, as host iovecs: the device-readable buffers (out)
 * first, then the device-writable ones (in).
 */
struct virtq_chain {
	uint16_t head;
	uint32_t nout, nin;
	uint64_t out_len, in_len;
	struct iovec iov[VIRTQ_CHAIN_MAX];
};

/* Queue operations (virtio_queue.c); pure logic on guest memory. */
int virtq_start(struct virtq *q, const struct vm *vm, bool event_idx);
void virtq_stop(struct virtq *q);
/* 1: a chain was taken; 0: the queue is empty; -1: the guest broke the rules (q->error). */
int virtq_pop(struct virtq *q, struct virtq_chain *chain);
/* Gives back the last n chains taken and not yet used. */
void virtq_unpop(struct virtq *q, uint16_t n);
/* Puts a used element without publishing it; virtq_publish makes them visible. */
void virtq_fill(struct virtq *q, uint16_t head, uint32_t len);
void virtq_publish(struct virtq *q);
/* virtq_fill and virtq_publish of one element. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);
/* Whether the driver wants an interrupt for what was published since the last call. */
bool virtq_should_interrupt(struct virtq *q);
/*
 * Asks the driver for a notification on its next buffer; returns true when
 * buffers arrived meanwhile (the device must look again before sleeping).
 * "Next" is beyond the available index the device last read: call it when
 * the queue ran empty, or after giving back (virtq_unpop) chains that were
 * not enough, so that the same chains do not count as new and a device
 * that needs more waits for the driver instead of spinning.
 */
bool virtq_arm_notification(struct virtq *q);
/* Whether the guest has made buffers available that the device has not taken. */
bool virtq_has_work(const struct virtq *q);

/* Copies between a chain's iovecs and a flat buffer; return bytes copied. */
size_t iov_copy_from(const struct iovec *iov, uint32_t n, size_t skip, void *dst, size_t len);
size_t iov_copy_to(const struct iovec *iov, uint32_t n, size_t skip, const void *src, size_t len);
/* The iovecs covering bytes [skip, skip+len) of iov, into out (at most max); returns their count. */
uint32_t iov_slice(const struct iovec *iov, uint32_t n, size_t skip, size_t len, struct iovec *out,
		   uint32_t max);

struct virtio_device;

/* What a device type provides. */
struct virtio_device_ops {
	const char *name;	/* "virtio-blk", for messages */
	uint16_t device_id;	/* virtio device type */
	uint16_t pci_class;	/* class code for the PCI transport */
	/* Serves queue index after a notification; on the device's I/O thread. */
	void (*queue_notified)(struct virtio_device *dev, int queue);
	/* The extra fd (e.g. a tap) is readable; on the I/O thread. */
	void (*extra_ready)(struct virtio_device *dev);
	/* The driver set DRIVER_OK: features are final.  Returns -1 to fail the device. */
	int (*start)(struct virtio_device *dev);
	/* The driver reset the device; queues are already stopped. */
	void (*reset)(struct virtio_device *dev);
	/* The driver wrote device config space (most devices ignore it). */
	void (*config_written)(struct virtio_device *dev, uint32_t offset, uint32_t len);
};

/* How the core reaches the transport. */
struct virtio_transport {
	/* Interrupts the driver: vector is a queue's or the config vector. */
	void (*interrupt)(struct virtio_device *dev, uint16_t vector, bool config_change);
	void *data;
};

struct virtio_device {
	const struct virtio_device_ops *ops;
	struct vm *vm;
	char name[32];			/* "virtio-blk0" */
	struct virtio_transport transport;

	/* Held by the I/O thread while it serves queues, and by the transport while it resets. */
	pthread_mutex_t lock;
	atomic_uint status;
	uint64_t device_features;
	uint64_t driver_features;
	uint32_t device_feature_select;
	uint32_t driver_feature_select;
	uint16_t config_vector;
	uint16_t queue_select;
	atomic_uint config_generation;
	bool error_logged;		/* one log line per reset cycle */
	bool paused;			/* the VM is paused: serve nothing (under lock) */
	atomic_bool pausing;		/* a pause waits for the lock: the I/O thread lets it have it */
	struct virtio_device *next;	/* vm->virtio_devices */
	int pci_slot, pci_function;	/* where the transport put it (the firmware's boot order) */

	int nqueues;
	struct virtq queues[VIRTIO_MAX_QUEUES];

	uint8_t config[VIRTIO_CONFIG_MAX]; /* device config space, little-endian */
	uint32_t config_size;

	/* The I/O thread: waits for queue notifications and the extra fd. */
	int epoll_fd;
	int extra_fd;			/* -1: none */
	bool extra_polled;
	pthread_t thread;
};

/* Sets up the common part; features are the device's own (the core adds the ring features). */
int virtio_device_init(struct virtio_device *dev, struct vm *vm, const struct virtio_device_ops *ops,
		       const char *name, int nqueues, uint64_t features, uint32_t config_size);
/* Starts the I/O thread; after the transport is attached. */
int virtio_device_run(struct virtio_device *dev);

/*
 * Pausing the VM: each I/O thread finishes the request in hand and then
 * serves nothing (no disk or tap I/O, no interrupts) until resumed.
 */
void virtio_pause_all(struct vm *vm);
void virtio_resume_all(struct vm *vm);

/* Status and feature logic, called by the transport on driver writes. */
void virtio_set_status(struct virtio_device *dev, uint8_t status);
void virtio_reset(struct virtio_device *dev);
bool virtio_has_feature(const struct virtio_device *dev, uint64_t feature);

/* Marks the device broken by the guest: NEEDS_RESET, logged once, config interrupt. */
void virtio_device_error(struct virtio_device *dev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Interrupts for queue if the driver wants one. */
void virtio_queue_interrupt(struct virtio_device *dev, int queue);
/* Whether the device may touch its queues (DRIVER_OK, not broken). */
bool virtio_device_live(const struct virtio_device *dev);
/* Starts or stops watching the extra fd (e.g. when receive buffers run out). */
void virtio_poll_extra(struct virtio_device *dev, bool on);

/*
 * What one call of a device's queue handler may do before it lets the I/O
 * thread go: a guest that keeps posting requests cannot hold the thread, and
 * the device lock that pause and reset wait for, in one call.
 */
#define VIRTIO_BUDGET_REQUESTS 128
#define VIRTIO_BUDGET_BYTES    (4u << 20)
struct virtio_budget {
	uint32_t requests;
	uint64_t bytes;
};
#define VIRTIO_BUDGET ((struct virtio_budget){ VIRTIO_BUDGET_REQUESTS, VIRTIO_BUDGET_BYTES })
/* Counts one request that moved bytes; false when the call has done its share. */
bool virtio_budget_spend(struct virtio_budget *budget, uint64_t bytes);
/* Serves queue again after the I/O thread's other events (and a pause) had their turn. */
void virtio_queue_yield(struct virtio_device *dev, int queue);

/*
 * Serves one request: returns the bytes it moved (for the budget), or -1
 * when the request broke the device (virtio_device_error already called).
 */
typedef long virtio_serve_fn(struct virtio_device *dev, int queue, struct virtq_chain *chain);
/*
 * The request loop every device shares: takes chains off queue and serves
 * each until the queue is empty (then arms the driver's notification) or
 * the budget is spent (then yields).  Returns 0 when the queue is empty, 1
 * when it yielded with work left, -1 when the device broke.
 */
int virtio_serve_requests(struct virtio_device *dev, int queue, struct virtq_chain *chain, virtio_serve_fn *serve);

/* Little-endian helpers for config space and guest structures (common/le.h). */
#define virtio_put16 le_put16
#define virtio_put32 le_put32
#define virtio_put64 le_put64
#define virtio_get16 le_get16
#define virtio_get32 le_get32
#define virtio_get64 le_get64

#endif
