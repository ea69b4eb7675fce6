/* The virtio 1.x modern PCI transport (virtio 1.x, 4.1). */
#ifndef VMD_VIRTIO_PCI_H
#define VMD_VIRTIO_PCI_H

#include "devices/virtio.h"

struct vm;

/*
 * Puts dev on PCI bus 0 with one memory BAR (common, ISR, device config,
 * notify and MSI-X regions), queue notifications through ioeventfd and
 * interrupts through MSI-X irqfds (INTx when the guest leaves MSI-X off),
 * then starts the device's I/O thread.
 */
int virtio_pci_add(struct vm *vm, struct virtio_device *dev);

/* BAR layout, exposed for unit tests. */
#define VIRTIO_PCI_VENDOR	0x1af4
#define VIRTIO_PCI_DEVICE_BASE	0x1040 /* modern devices: 0x1040 + virtio device type */
#define VIRTIO_PCI_BAR_SIZE	0x4000
#define VIRTIO_PCI_COMMON	0x0000
#define VIRTIO_PCI_ISR		0x0800
#define VIRTIO_PCI_DEVICE	0x1000
#define VIRTIO_PCI_NOTIFY	0x2000
#define VIRTIO_PCI_NOTIFY_MULT	4
#define VIRTIO_PCI_MSIX_TABLE	0x3000
#define VIRTIO_PCI_MSIX_PBA	0x3800

#endif
