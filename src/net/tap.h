/*
 * Tap devices for virtio-net: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, so that
 * every frame carries the 12-byte virtio-net header (offload state) and the
 * guest's checksum and segmentation offloads pass through untouched.
 */
#ifndef VMD_TAP_H
#define VMD_TAP_H

#include <net/if.h>
#include <stdbool.h>

#define TAP_ERROR_MAX	   (IFNAMSIZ + 256)
#define TAP_VNET_HDR_BYTES 12 /* struct virtio_net_hdr_mrg_rxbuf, what virtio 1.x always uses */

/* Opens (creating it if needed) the tap called name; returns the fd or -1 with err set. */
int tap_open(const char *name, char *err);
/*
 * Readies an open tap fd for a VM: checks it is a tap with a vnet header,
 * sets the header size and non-blocking mode, and gets its name.
 */
int tap_prepare(int fd, char name[IFNAMSIZ], char *err);
/* Tells the tap which offloads (TUN_F_*) the guest accepts on received frames. */
int tap_set_offload(int fd, unsigned offloads);
/* Whether the tap can pass checksum and segmentation offloads at all. */
bool tap_has_offloads(int fd);

#endif
