/*
 * The virtio 1.x modern PCI transport.  One 32-bit memory BAR holds the
 * common configuration, the ISR byte, the device configuration, the queue
 * notification doorbells and the MSI-X table and pending bits; vendor
 * capabilities tell the driver where each one is.
 *
 * The doorbells are ioeventfds: a guest notification signals the device's
 * eventfd inside KVM and the vCPU goes on.  Interrupts are MSI-X messages
 * through irqfds on GSIs that KVM routes to the message the guest
 * programmed; a guest that leaves MSI-X off gets INTx, level-triggered on
 * the IOAPIC pin the DSDT's _PRT names, lowered when it reads the ISR.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/pci.h"
#include "devices/virtio_pci.h"
#include "vm/vm.h"

#define VIRTIO_PCI_VECTORS	(VIRTIO_MAX_QUEUES + 1)

/* Capabilities in config space. */
#define CAP_MSIX		0x40
#define CAP_COMMON		0x4c
#define CAP_NOTIFY		0x5c
#define CAP_ISR			0x70
#define CAP_DEVICE		0x80
#define CAP_PCI_CFG		0x90 /* 20 bytes: the capability, then the data window */
#define CAP_PCI_CFG_BAR		(CAP_PCI_CFG + 4)
#define CAP_PCI_CFG_OFFSET	(CAP_PCI_CFG + 8)
#define CAP_PCI_CFG_LENGTH	(CAP_PCI_CFG + 12)
#define CAP_PCI_CFG_DATA	(CAP_PCI_CFG + 16)
#define PCI_CAP_ID_MSIX		0x11
#define PCI_CAP_ID_VENDOR	0x09
#define VIRTIO_CAP_COMMON	1
#define VIRTIO_CAP_NOTIFY	2
#define VIRTIO_CAP_ISR		3
#define VIRTIO_CAP_DEVICE	4
#define VIRTIO_CAP_PCI_CFG	5
#define MSIX_ENABLE		0x8000
#define MSIX_FUNCTION_MASK	0x4000
#define MSIX_VECTOR_MASKED	1

/* Common configuration offsets (virtio 1.x, 4.1.4.3). */
#define COMMON_DFSELECT		0x00
#define COMMON_DF		0x04
#define COMMON_GFSELECT		0x08
#define COMMON_GF		0x0c
#define COMMON_MSIX		0x10
#define COMMON_NUMQ		0x12
#define COMMON_STATUS		0x14
#define COMMON_CFGGENERATION	0x15
#define COMMON_Q_SELECT		0x16
#define COMMON_Q_SIZE		0x18
#define COMMON_Q_MSIX		0x1a
#define COMMON_Q_ENABLE		0x1c
#define COMMON_Q_NOFF		0x1e
#define COMMON_Q_DESCLO		0x20
#define COMMON_Q_DESCHI		0x24
#define COMMON_Q_AVAILLO	0x28
#define COMMON_Q_AVAILHI	0x2c
#define COMMON_Q_USEDLO		0x30
#define COMMON_Q_USEDHI		0x34
#define COMMON_SIZE		0x38

#define ISR_QUEUE		1
#define ISR_CONFIG		2

struct msix_entry {
	uint32_t address_lo, address_hi, data, control;
};

struct virtio_pci {
	struct pci_function fn;
	struct virtio_device *dev;
	struct vm *vm;
	uint64_t bar;
	int nvectors;

	/* MSI-X: written by vCPUs (table, enable), read by the I/O thread (masks). */
	pthread_mutex_t lock;
	struct msix_entry table[VIRTIO_PCI_VECTORS];
	atomic_uint masked;	   /* bit v: vector v masked, or all when the function is */
	atomic_uint pending;	   /* bit v: vector v fired while masked */
	atomic_bool msix_enabled;
	int gsi[VIRTIO_PCI_VECTORS];
	int irqfd[VIRTIO_PCI_VECTORS];

	/* INTx (under lock): the line is up while the ISR is not 0. */
	uint8_t isr;
	int intx_gsi;
};

static void
vpci_fire(struct virtio_pci *vp, int vector)
{
	uint64_t one = 1;

	if (write(vp->irqfd[vector], &one, sizeof(one)) < 0)
		log_warn("%s: MSI-X vector %d", vp->dev->name, vector);
}

static void
vpci_interrupt(struct virtio_device *dev, uint16_t vector, bool config_change)
{
	struct virtio_pci *vp = dev->transport.data;

	if (atomic_load(&vp->msix_enabled)) {
		if (vector >= vp->nvectors)
			return; /* VIRTIO_NO_VECTOR: the driver wants none */
		if (!(atomic_load(&vp->masked) & (1u << vector))) {
			vpci_fire(vp, vector);
			return;
		}
		/* Masked: remember it; unmasking delivers it (under the lock, so neither side misses it). */
		pthread_mutex_lock(&vp->lock);
		if (atomic_load(&vp->masked) & (1u << vector))
			atomic_fetch_or(&vp->pending, 1u << vector);
		else
			vpci_fire(vp, vector);
		pthread_mutex_unlock(&vp->lock);
		return;
	}
	pthread_mutex_lock(&vp->lock);
	if (vp->isr == 0)
		pci_intx_level(vp->vm, vp->intx_gsi, true);
	vp->isr |= config_change ? ISR_CONFIG : ISR_QUEUE;
	pthread_mutex_unlock(&vp->lock);
}

/* Recomputes the mask bits and routes from the table; delivers what was pending.  Caller holds lock. */
static void
vpci_msix_update(struct virtio_pci *vp)
{
	uint16_t control = (uint16_t)(vp->fn.config[CAP_MSIX + 2] | vp->fn.config[CAP_MSIX + 3] << 8);
	bool enabled = (control & MSIX_ENABLE) != 0;
	bool function_masked = (control & MSIX_FUNCTION_MASK) != 0;
	unsigned masked = 0, unmasked_pending;

	for (int v = 0; v < vp->nvectors; v++) {
		struct msix_entry *e = &vp->table[v];
		bool vector_masked = function_masked || (e->control & MSIX_VECTOR_MASKED);

		if (vector_masked)
			masked |= 1u << v;
		else if (enabled)
			pci_msi_route(vp->vm, vp->gsi[v], (uint64_t)e->address_hi << 32 | e->address_lo, e->data,
				      true);
	}
	atomic_store(&vp->masked, masked);
	if (enabled && !atomic_load(&vp->msix_enabled)) {
		/* Leaving INTx: drop the line it may have left up. */
		if (vp->isr)
			pci_intx_level(vp->vm, vp->intx_gsi, false);
		vp->isr = 0;
	}
	atomic_store(&vp->msix_enabled, enabled);
	if (!enabled)
		return;
	unmasked_pending = atomic_load(&vp->pending) & ~masked;
	atomic_fetch_and(&vp->pending, ~unmasked_pending);
	for (int v = 0; v < vp->nvectors; v++)
		if (unmasked_pending & (1u << v))
			vpci_fire(vp, v);
}

static void vpci_bar_io(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/*
 * The PCI configuration access capability (virtio 1.x, 4.1.4.8): a window
 * in config space onto BAR 0, for drivers that cannot reach the BAR itself
 * (iPXE uses it for the doorbells).  The driver sets bar, offset and length
 * (1, 2 or 4, offset aligned to it), then reads or writes the data bytes.
 */
static bool
vpci_cfg_window(const struct pci_function *fn, uint32_t *offset, uint32_t *length)
{
	const uint8_t *c = fn->config;

	*offset = (uint32_t)c[CAP_PCI_CFG_OFFSET] | (uint32_t)c[CAP_PCI_CFG_OFFSET + 1] << 8 |
		  (uint32_t)c[CAP_PCI_CFG_OFFSET + 2] << 16 | (uint32_t)c[CAP_PCI_CFG_OFFSET + 3] << 24;
	*length = (uint32_t)c[CAP_PCI_CFG_LENGTH] | (uint32_t)c[CAP_PCI_CFG_LENGTH + 1] << 8 |
		  (uint32_t)c[CAP_PCI_CFG_LENGTH + 2] << 16 | (uint32_t)c[CAP_PCI_CFG_LENGTH + 3] << 24;
	return c[CAP_PCI_CFG_BAR] == 0 && (*length == 1 || *length == 2 || *length == 4) && *offset % *length == 0 &&
	       *offset < VIRTIO_PCI_BAR_SIZE;
}

static bool
vpci_touches_cfg_data(uint32_t offset, uint32_t len)
{
	return offset < CAP_PCI_CFG_DATA + 4 && CAP_PCI_CFG_DATA < offset + len;
}

static void
vpci_config_reading(struct pci_function *fn, uint32_t offset, uint32_t len)
{
	uint32_t at, length;

	if (vpci_touches_cfg_data(offset, len) && vpci_cfg_window(fn, &at, &length))
		vpci_bar_io(fn->device, at, &fn->config[CAP_PCI_CFG_DATA], length, false);
}

static void
vpci_config_written(struct pci_function *fn, uint32_t offset, uint32_t len)
{
	struct virtio_pci *vp = fn->device;
	uint32_t at, length;

	if (vpci_touches_cfg_data(offset, len) && vpci_cfg_window(fn, &at, &length))
		vpci_bar_io(vp, at, &fn->config[CAP_PCI_CFG_DATA], length, true);

	if (offset + len > CAP_MSIX + 2 && offset < CAP_MSIX + 4) {
		pthread_mutex_lock(&vp->lock);
		vpci_msix_update(vp);
		pthread_mutex_unlock(&vp->lock);
	}
}

static void
vpci_msix_table_io(struct virtio_pci *vp, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	uint32_t size = (uint32_t)vp->nvectors * sizeof(struct msix_entry);

	if (offset >= size || len > size - offset || (len != 4 && len != 8) || offset % len) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&vp->lock);
	if (is_write) {
		memcpy((uint8_t *)vp->table + offset, data, len);
		vpci_msix_update(vp);
	} else {
		memcpy(data, (uint8_t *)vp->table + offset, len);
	}
	pthread_mutex_unlock(&vp->lock);
}

static void
vpci_msix_pba_io(struct virtio_pci *vp, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	uint64_t bits = atomic_load(&vp->pending);

	if (is_write)
		return; /* read-only */
	memset(data, 0, len);
	if (offset < 8)
		for (uint32_t i = 0; i < len && offset + i < 8; i++)
			data[i] = (uint8_t)(bits >> (8 * (offset + i)));
}

static uint8_t
vpci_isr_read(struct virtio_pci *vp)
{
	uint8_t isr;

	pthread_mutex_lock(&vp->lock);
	isr = vp->isr;
	vp->isr = 0;
	if (isr)
		pci_intx_level(vp->vm, vp->intx_gsi, false);
	pthread_mutex_unlock(&vp->lock);
	return isr;
}

/* The common configuration as the driver reads it. */
static void
vpci_common_snapshot(struct virtio_pci *vp, uint8_t *c)
{
	struct virtio_device *dev = vp->dev;
	uint16_t select = dev->queue_select;
	const struct virtq *q = select < dev->nqueues ? &dev->queues[select] : NULL;
	uint32_t fselect = dev->device_feature_select;

	memset(c, 0, COMMON_SIZE);
	virtio_put32(c + COMMON_DFSELECT, fselect);
	virtio_put32(c + COMMON_DF, fselect < 2 ? (uint32_t)(dev->device_features >> (32 * fselect)) : 0);
	virtio_put32(c + COMMON_GFSELECT, dev->driver_feature_select);
	virtio_put32(c + COMMON_GF, dev->driver_feature_select < 2
					    ? (uint32_t)(dev->driver_features >> (32 * dev->driver_feature_select))
					    : 0);
	virtio_put16(c + COMMON_MSIX, dev->config_vector);
	virtio_put16(c + COMMON_NUMQ, (uint16_t)dev->nqueues);
	c[COMMON_STATUS] = (uint8_t)atomic_load(&dev->status);
	c[COMMON_CFGGENERATION] = (uint8_t)atomic_load(&dev->config_generation);
	virtio_put16(c + COMMON_Q_SELECT, select);
	if (q == NULL)
		return;
	virtio_put16(c + COMMON_Q_SIZE, q->size);
	virtio_put16(c + COMMON_Q_MSIX, q->msix_vector);
	virtio_put16(c + COMMON_Q_ENABLE, q->enabled);
	virtio_put16(c + COMMON_Q_NOFF, select);
	virtio_put64(c + COMMON_Q_DESCLO, q->desc_gpa);
	virtio_put64(c + COMMON_Q_AVAILLO, q->avail_gpa);
	virtio_put64(c + COMMON_Q_USEDLO, q->used_gpa);
}

static void
set_low(uint64_t *field, uint32_t value)
{
	*field = (*field & ~0xffffffffULL) | value;
}

static void
set_high(uint64_t *field, uint32_t value)
{
	*field = (*field & 0xffffffffULL) | (uint64_t)value << 32;
}

/* A queue's registers change only while the device is not running it. */
static void
vpci_queue_write(struct virtio_pci *vp, struct virtq *q, uint64_t offset, uint32_t value)
{
	struct virtio_device *dev = vp->dev;

	if (offset == COMMON_Q_MSIX) {
		q->msix_vector = value < (uint32_t)vp->nvectors ? (uint16_t)value : VIRTIO_NO_VECTOR;
		return;
	}
	pthread_mutex_lock(&dev->lock);
	if (q->running) {
		pthread_mutex_unlock(&dev->lock);
		return;
	}
	switch (offset) {
	case COMMON_Q_SIZE: q->size = (uint16_t)value; break;
	case COMMON_Q_DESCLO: set_low(&q->desc_gpa, value); break;
	case COMMON_Q_DESCHI: set_high(&q->desc_gpa, value); break;
	case COMMON_Q_AVAILLO: set_low(&q->avail_gpa, value); break;
	case COMMON_Q_AVAILHI: set_high(&q->avail_gpa, value); break;
	case COMMON_Q_USEDLO: set_low(&q->used_gpa, value); break;
	case COMMON_Q_USEDHI: set_high(&q->used_gpa, value); break;
	case COMMON_Q_ENABLE:
		if (value != 1)
			break; /* writing 0 is not allowed: a reset disables queues */
		q->enabled = true;
		/* Enabled after DRIVER_OK: start it now. */
		if (virtio_device_live(dev) && virtq_start(q, dev->vm, virtio_has_feature(dev, VIRTIO_F_EVENT_IDX)) < 0)
			virtio_device_error(dev, "queue: %s", q->error);
		break;
	}
	pthread_mutex_unlock(&dev->lock);
}

static void
vpci_common_write(struct virtio_pci *vp, uint64_t offset, uint32_t value)
{
	struct virtio_device *dev = vp->dev;
	uint16_t select = dev->queue_select;

	switch (offset) {
	case COMMON_DFSELECT: dev->device_feature_select = value; return;
	case COMMON_GFSELECT: dev->driver_feature_select = value; return;
	case COMMON_GF:
		if (atomic_load(&dev->status) & VIRTIO_STATUS_FEATURES_OK)
			return; /* negotiation is over */
		if (dev->driver_feature_select == 0)
			set_low(&dev->driver_features, value);
		else if (dev->driver_feature_select == 1)
			set_high(&dev->driver_features, value);
		return;
	case COMMON_MSIX:
		dev->config_vector = value < (uint32_t)vp->nvectors ? (uint16_t)value : VIRTIO_NO_VECTOR;
		return;
	case COMMON_STATUS: virtio_set_status(dev, (uint8_t)value); return;
	case COMMON_Q_SELECT: dev->queue_select = (uint16_t)value; return;
	}
	if (select < dev->nqueues)
		vpci_queue_write(vp, &dev->queues[select], offset, value);
}

static void
vpci_common_io(struct virtio_pci *vp, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	uint8_t snapshot[COMMON_SIZE];

	if (offset >= COMMON_SIZE || len > COMMON_SIZE - offset) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (!is_write) {
		vpci_common_snapshot(vp, snapshot);
		memcpy(data, snapshot + offset, len);
		return;
	}
	/* Writes come at the width of the field, 64-bit fields as two halves or whole. */
	if (len == 8 && (offset == COMMON_Q_DESCLO || offset == COMMON_Q_AVAILLO || offset == COMMON_Q_USEDLO)) {
		vpci_common_write(vp, offset, virtio_get32(data));
		vpci_common_write(vp, offset + 4, virtio_get32(data + 4));
	} else if (len == 4) {
		vpci_common_write(vp, offset, virtio_get32(data));
	} else if (len == 2) {
		vpci_common_write(vp, offset, virtio_get16(data));
	} else if (len == 1) {
		vpci_common_write(vp, offset, data[0]);
	}
}

static void
vpci_device_config_io(struct virtio_pci *vp, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_device *dev = vp->dev;

	if (offset >= dev->config_size || len > dev->config_size - offset) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (!is_write) {
		memcpy(data, dev->config + offset, len);
	} else if (dev->ops->config_written) {
		pthread_mutex_lock(&dev->lock);
		memcpy(dev->config + offset, data, len);
		dev->ops->config_written(dev, (uint32_t)offset, len);
		pthread_mutex_unlock(&dev->lock);
	}
}

static void
vpci_notify_io(struct virtio_pci *vp, uint64_t offset, bool is_write)
{
	uint64_t queue = offset / VIRTIO_PCI_NOTIFY_MULT, one = 1;

	/* Normally the ioeventfd takes these in KVM; this is an odd-width write. */
	if (is_write && queue < (uint64_t)vp->dev->nqueues &&
	    write(vp->dev->queues[queue].kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("%s: notify", vp->dev->name);
}

static void
vpci_bar_io(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_pci *vp = device;

	if (offset >= VIRTIO_PCI_MSIX_PBA)
		vpci_msix_pba_io(vp, offset - VIRTIO_PCI_MSIX_PBA, data, len, is_write);
	else if (offset >= VIRTIO_PCI_MSIX_TABLE)
		vpci_msix_table_io(vp, offset - VIRTIO_PCI_MSIX_TABLE, data, len, is_write);
	else if (offset >= VIRTIO_PCI_NOTIFY) {
		vpci_notify_io(vp, offset - VIRTIO_PCI_NOTIFY, is_write);
		if (!is_write)
			memset(data, 0, len);
	} else if (offset >= VIRTIO_PCI_DEVICE)
		vpci_device_config_io(vp, offset - VIRTIO_PCI_DEVICE, data, len, is_write);
	else if (offset >= VIRTIO_PCI_ISR) {
		if (!is_write) {
			memset(data, 0, len);
			if (offset == VIRTIO_PCI_ISR)
				data[0] = vpci_isr_read(vp);
		}
	} else
		vpci_common_io(vp, offset - VIRTIO_PCI_COMMON, data, len, is_write);
}

static void
vpci_put_cap(struct pci_function *fn, uint8_t at, uint8_t next, uint8_t type, uint32_t offset, uint32_t length,
	     uint8_t cap_len)
{
	fn->config[at] = PCI_CAP_ID_VENDOR;
	fn->config[at + 1] = next;
	fn->config[at + 2] = cap_len;
	fn->config[at + 3] = type;
	fn->config[at + 4] = 0; /* BAR 0 */
	pci_config_put32(fn, at + 8u, offset);
	pci_config_put32(fn, at + 12u, length);
}

/*
 * A 16-bit write to a queue's doorbell signals its eventfd inside KVM.  The
 * doorbells follow the BAR when the guest moves it (deassign at the old
 * place, assign at the new).
 */
static int
vpci_doorbells(struct virtio_pci *vp, uint64_t bar, bool assign)
{
	for (int i = 0; i < vp->dev->nqueues; i++) {
		struct kvm_ioeventfd ioeventfd = {
			.addr = bar + VIRTIO_PCI_NOTIFY + (uint64_t)i * VIRTIO_PCI_NOTIFY_MULT,
			.len = 2,
			.fd = vp->dev->queues[i].kick_fd,
			.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
		};

		if (ioctl(vp->vm->vm_fd, KVM_IOEVENTFD, &ioeventfd) < 0) {
			log_warn("%s: KVM_IOEVENTFD", vp->dev->name);
			return -1;
		}
	}
	return 0;
}

static void
vpci_bar_moved(struct pci_function *fn, int bar, uint64_t from)
{
	struct virtio_pci *vp = fn->device;

	if (bar != 0)
		return;
	if (from != 0)
		vpci_doorbells(vp, from, false);
	vp->bar = fn->bars[0].address;
	if (vp->bar != 0)
		vpci_doorbells(vp, vp->bar, true);
}

static void
vpci_build_config(struct virtio_pci *vp)
{
	struct pci_function *fn = &vp->fn;
	struct virtio_device *dev = vp->dev;

	pci_config_put16(fn, PCI_VENDOR_ID, VIRTIO_PCI_VENDOR);
	pci_config_put16(fn, PCI_DEVICE_ID, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + dev->ops->device_id));
	fn->config[PCI_REVISION] = 1; /* modern */
	pci_config_put16(fn, PCI_CLASS_DEVICE, dev->ops->pci_class);
	pci_config_put16(fn, PCI_SUBSYS_VENDOR, VIRTIO_PCI_VENDOR);
	pci_config_put16(fn, PCI_SUBSYS_ID, (uint16_t)(0x40 + dev->ops->device_id));
	pci_config_put16(fn, PCI_STATUS, PCI_STATUS_CAPS);
	fn->config[PCI_CAPABILITIES] = CAP_MSIX;
	fn->config[PCI_INTERRUPT_PIN] = 1; /* INTA */

	fn->config[CAP_MSIX] = PCI_CAP_ID_MSIX;
	fn->config[CAP_MSIX + 1] = CAP_COMMON;
	pci_config_put16(fn, CAP_MSIX + 2, (uint16_t)(vp->nvectors - 1));
	pci_config_put32(fn, CAP_MSIX + 4, VIRTIO_PCI_MSIX_TABLE); /* BIR 0 */
	pci_config_put32(fn, CAP_MSIX + 8, VIRTIO_PCI_MSIX_PBA);
	fn->writable[CAP_MSIX + 3] = (MSIX_ENABLE | MSIX_FUNCTION_MASK) >> 8;

	vpci_put_cap(fn, CAP_COMMON, CAP_NOTIFY, VIRTIO_CAP_COMMON, VIRTIO_PCI_COMMON, COMMON_SIZE, 16);
	vpci_put_cap(fn, CAP_NOTIFY, CAP_ISR, VIRTIO_CAP_NOTIFY, VIRTIO_PCI_NOTIFY,
		     (uint32_t)dev->nqueues * VIRTIO_PCI_NOTIFY_MULT, 20);
	pci_config_put32(fn, CAP_NOTIFY + 16, VIRTIO_PCI_NOTIFY_MULT);
	/* A device without config space (rng) has no capability for it. */
	vpci_put_cap(fn, CAP_ISR, dev->config_size ? CAP_DEVICE : CAP_PCI_CFG, VIRTIO_CAP_ISR, VIRTIO_PCI_ISR, 1, 16);
	if (dev->config_size)
		vpci_put_cap(fn, CAP_DEVICE, CAP_PCI_CFG, VIRTIO_CAP_DEVICE, VIRTIO_PCI_DEVICE, dev->config_size, 16);
	vpci_put_cap(fn, CAP_PCI_CFG, 0, VIRTIO_CAP_PCI_CFG, 0, 0, 20);
	memset(&fn->writable[CAP_PCI_CFG_BAR], 0xff, 1);
	memset(&fn->writable[CAP_PCI_CFG_OFFSET], 0xff, 12); /* offset, length, data */

	fn->bars[0] = (struct pci_bar){ .size = VIRTIO_PCI_BAR_SIZE, .handler = vpci_bar_io, .device = vp };
	fn->config_written = vpci_config_written;
	fn->config_reading = vpci_config_reading;
	fn->bar_moved = vpci_bar_moved;
	fn->device = vp;
}

/* Each vector gets a GSI and an irqfd on it; routes appear when the guest programs the table. */
static int
vpci_setup_vectors(struct virtio_pci *vp)
{
	for (int v = 0; v < vp->nvectors; v++) {
		struct kvm_irqfd irqfd = { 0 };

		vp->table[v].control = MSIX_VECTOR_MASKED;
		vp->gsi[v] = pci_msi_alloc(vp->vm);
		vp->irqfd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vp->gsi[v] < 0 || vp->irqfd[v] < 0) {
			log_warnx("%s: no room for MSI-X vector %d", vp->dev->name, v);
			return -1;
		}
		irqfd.fd = (uint32_t)vp->irqfd[v];
		irqfd.gsi = (uint32_t)vp->gsi[v];
		if (ioctl(vp->vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
			log_warn("%s: KVM_IRQFD", vp->dev->name);
			return -1;
		}
	}
	atomic_store(&vp->masked, (1u << vp->nvectors) - 1);
	return 0;
}

int
virtio_pci_add(struct vm *vm, struct virtio_device *dev)
{
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	int slot;

	if (vp == NULL) {
		log_warn("%s", dev->name);
		return -1;
	}
	vp->dev = dev;
	vp->vm = vm;
	vp->nvectors = dev->nqueues + 1;
	pthread_mutex_init(&vp->lock, NULL);
	dev->transport = (struct virtio_transport){ .interrupt = vpci_interrupt, .data = vp };
	vpci_build_config(vp);
	slot = pci_add_function(vm, &vp->fn);
	if (slot < 0)
		return -1;
	vp->bar = vp->fn.bars[0].address;
	dev->pci_slot = vp->fn.slot;
	dev->pci_function = vp->fn.function;
	vp->intx_gsi = pci_intx_gsi(slot);
	vp->fn.config[PCI_INTERRUPT_LINE] = (uint8_t)vp->intx_gsi;
	if (vpci_setup_vectors(vp) < 0 || vpci_doorbells(vp, vp->bar, true) < 0)
		return -1;
	return virtio_device_run(dev);
}
