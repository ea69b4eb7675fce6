/* Tap devices: see tap.h. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "net/tap.h"

#define TUN_DEVICE "/dev/net/tun"

int
tap_open(const char *name, char *err)
{
	struct ifreq ifr = { 0 };
	int fd;

	if (strlen(name) >= IFNAMSIZ) {
		snprintf(err, TAP_ERROR_MAX, "interface %s: name longer than %d characters", name, IFNAMSIZ - 1);
		return -1;
	}
	fd = open(TUN_DEVICE, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, TAP_ERROR_MAX, "interface %s: %s: %s", name, TUN_DEVICE, strerror(errno));
		return -1;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		snprintf(err, TAP_ERROR_MAX, "interface %s: cannot open the tap: %s", name, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int
tap_prepare(int fd, char name[IFNAMSIZ], char *err)
{
	struct ifreq ifr = { 0 };
	int size = TAP_VNET_HDR_BYTES, flags;

	if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
		snprintf(err, TAP_ERROR_MAX, "fd %d: not a tap: %s", fd, strerror(errno));
		return -1;
	}
	snprintf(name, IFNAMSIZ, "%s", ifr.ifr_name);
	if ((ifr.ifr_flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)) != (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)) {
		snprintf(err, TAP_ERROR_MAX, "interface %s: not opened as IFF_TAP | IFF_NO_PI | IFF_VNET_HDR", name);
		return -1;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &size) < 0) {
		snprintf(err, TAP_ERROR_MAX, "interface %s: cannot set the vnet header size: %s", name,
			 strerror(errno));
		return -1;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		snprintf(err, TAP_ERROR_MAX, "interface %s: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

int
tap_set_offload(int fd, unsigned offloads)
{
	return ioctl(fd, TUNSETOFFLOAD, (unsigned long)offloads);
}

bool
tap_has_offloads(int fd)
{
	return tap_set_offload(fd, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) == 0 &&
	       tap_set_offload(fd, 0) == 0;
}
