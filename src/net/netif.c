/* Host network interfaces: see netif.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <ctype.h>
#include <linux/ipv6.h> /* struct in6_ifreq */
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/netif.h"

static bool
valid_ifname_char(char c)
{
	return c > ' ' && c < 0x7f && c != '/' && c != ':';
}

void
netif_default_bridge(const char *switch_name, char out[IFNAMSIZ])
{
	size_t len = strlen(switch_name);
	uint32_t hash = 2166136261u; /* FNV-1a */
	bool plain = len > 0 && len + strlen(NETIF_BRIDGE_PREFIX) < IFNAMSIZ;

	for (const char *p = switch_name; *p; p++) {
		plain = plain && valid_ifname_char(*p);
		hash = (hash ^ (uint8_t)*p) * 16777619u;
	}
	if (plain)
		snprintf(out, IFNAMSIZ, "%s%s", NETIF_BRIDGE_PREFIX, switch_name);
	else
		snprintf(out, IFNAMSIZ, "%s%08x", NETIF_BRIDGE_PREFIX, hash);
}

/* A socket for the interface ioctls; AF_INET, since addresses need it. */
static int
ioctl_socket(const char *name, char *err)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		snprintf(err, NETIF_ERROR_MAX, "interface %s: socket: %s", name, strerror(errno));
	return s;
}

static int
check_name(const char *name, char *err)
{
	if (name[0] != '\0' && strlen(name) < IFNAMSIZ)
		return 0;
	snprintf(err, NETIF_ERROR_MAX, "interface \"%s\": not a valid interface name", name);
	return -1;
}

bool
netif_exists(const char *name)
{
	return name[0] != '\0' && strlen(name) < IFNAMSIZ && if_nametoindex(name) != 0;
}

bool
netif_is_bridge(const char *name)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/class/net/%s/bridge", name);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int
netif_bridge_create(const char *name, bool *created, char *err)
{
	int s, rc = 0;

	*created = false;
	if (check_name(name, err) < 0)
		return -1;
	if (netif_exists(name)) {
		if (netif_is_bridge(name))
			return 0;
		snprintf(err, NETIF_ERROR_MAX, "interface %s: exists and is not a bridge", name);
		return -1;
	}
	if ((s = ioctl_socket(name, err)) < 0)
		return -1;
	if (ioctl(s, SIOCBRADDBR, name) < 0) {
		if (errno == EEXIST && netif_is_bridge(name)) {
			close(s);
			return 0; /* created by someone else just now */
		}
		snprintf(err, NETIF_ERROR_MAX, "bridge %s: cannot create it: %s%s", name, strerror(errno),
			 errno == ENOPKG || errno == EINVAL ? " (is the bridge module loaded?)" : "");
		rc = -1;
	} else {
		*created = true;
	}
	close(s);
	return rc;
}

int
netif_bridge_destroy(const char *name, char *err)
{
	int s, rc = 0;

	if (check_name(name, err) < 0)
		return -1;
	if (netif_set_up(name, false, err) < 0)
		return -1;
	if ((s = ioctl_socket(name, err)) < 0)
		return -1;
	if (ioctl(s, SIOCBRDELBR, name) < 0) {
		snprintf(err, NETIF_ERROR_MAX, "bridge %s: cannot delete it: %s", name, strerror(errno));
		rc = -1;
	}
	close(s);
	return rc;
}

/*
 * Adds (SIOCBRADDIF) or removes (SIOCBRDELIF) the interface of that index on
 * the bridge.  Returns -1 with err set when no socket could be had, else 0
 * or the ioctl's errno, for the caller to judge.
 */
static int
bridge_port_ioctl(const char *bridge, int ifindex, unsigned long request, char *err)
{
	struct ifreq ifr = { 0 };
	int s, rc = 0;

	ifr.ifr_ifindex = ifindex;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", bridge);
	if ((s = ioctl_socket(bridge, err)) < 0)
		return -1;
	if (ioctl(s, request, &ifr) < 0)
		rc = errno;
	close(s);
	return rc;
}

int
netif_bridge_add_port(const char *bridge, const char *port, char *err)
{
	int ifindex, rc;

	if (check_name(bridge, err) < 0 || check_name(port, err) < 0)
		return -1;
	if ((ifindex = (int)if_nametoindex(port)) == 0) {
		snprintf(err, NETIF_ERROR_MAX, "interface %s: %s", port, strerror(errno));
		return -1;
	}
	rc = bridge_port_ioctl(bridge, ifindex, SIOCBRADDIF, err);
	if (rc > 0 && rc != EBUSY) /* EBUSY: already a port */
		snprintf(err, NETIF_ERROR_MAX, "bridge %s: cannot add %s: %s", bridge, port, strerror(rc));
	return rc < 0 || (rc > 0 && rc != EBUSY) ? -1 : 0;
}

bool
netif_is_port_of(const char *bridge, const char *port)
{
	char path[64], target[PATH_MAX];
	const char *base;
	ssize_t n;

	if (strlen(port) >= IFNAMSIZ || strchr(port, '/') != NULL)
		return false;
	snprintf(path, sizeof(path), "/sys/class/net/%s/master", port);
	if ((n = readlink(path, target, sizeof(target) - 1)) < 0)
		return false;
	target[n] = '\0';
	base = strrchr(target, '/');
	return strcmp(base != NULL ? base + 1 : target, bridge) == 0;
}

int
netif_bridge_remove_port(const char *bridge, const char *port, char *err)
{
	int ifindex, rc;

	if (check_name(bridge, err) < 0 || check_name(port, err) < 0)
		return -1;
	if (!netif_is_port_of(bridge, port))
		return 0;
	if ((ifindex = (int)if_nametoindex(port)) == 0)
		return 0; /* gone meanwhile: its VM exited */
	rc = bridge_port_ioctl(bridge, ifindex, SIOCBRDELIF, err);
	if (rc == EINVAL || rc == ENODEV) /* not a port any more, or gone */
		rc = 0;
	if (rc > 0)
		snprintf(err, NETIF_ERROR_MAX, "bridge %s: cannot remove %s: %s", bridge, port, strerror(rc));
	return rc == 0 ? 0 : -1;
}

int
netif_set_up(const char *name, bool up, char *err)
{
	struct ifreq ifr = { 0 };
	int s, rc = -1;

	if (check_name(name, err) < 0 || (s = ioctl_socket(name, err)) < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		snprintf(err, NETIF_ERROR_MAX, "interface %s: %s", name, strerror(errno));
		goto out;
	}
	if (up)
		ifr.ifr_flags |= IFF_UP;
	else
		ifr.ifr_flags &= ~IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
		snprintf(err, NETIF_ERROR_MAX, "interface %s: cannot set it %s: %s", name,
			 up ? "up" : "down", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(s);
	return rc;
}

int
netif_set_addr4(const char *name, struct in_addr addr, unsigned prefix_len, char *err)
{
	struct ifreq ifr = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	char text[INET_ADDRSTRLEN];
	int s, rc = -1;

	if (check_name(name, err) < 0 || prefix_len > 32 || (s = ioctl_socket(name, err)) < 0)
		return -1;
	inet_ntop(AF_INET, &addr, text, sizeof(text));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	sin->sin_family = AF_INET;
	sin->sin_addr = addr;
	if (ioctl(s, SIOCSIFADDR, &ifr) < 0) {
		snprintf(err, NETIF_ERROR_MAX, "interface %s: cannot set address %s: %s", name, text,
			 strerror(errno));
		goto out;
	}
	sin->sin_addr.s_addr = prefix_len ? htonl(~(uint32_t)0 << (32 - prefix_len)) : 0;
	if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0) {
		snprintf(err, NETIF_ERROR_MAX, "interface %s: cannot set netmask /%u: %s", name,
			 prefix_len, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(s);
	return rc;
}

int
netif_add_addr6(const char *name, const struct in6_addr *addr, unsigned prefix_len, char *err)
{
	struct in6_ifreq req = { 0 };
	char text[INET6_ADDRSTRLEN];
	int s, rc = 0;

	if (check_name(name, err) < 0)
		return -1;
	inet_ntop(AF_INET6, addr, text, sizeof(text));
	if (prefix_len > 128) {
		snprintf(err, NETIF_ERROR_MAX, "interface %s: address %s/%u: prefix too long", name,
			 text, prefix_len);
		return -1;
	}
	if ((req.ifr6_ifindex = (int)if_nametoindex(name)) == 0) {
		snprintf(err, NETIF_ERROR_MAX, "interface %s: %s", name, strerror(errno));
		return -1;
	}
	/* IPv6 addresses are set through an IPv6 socket. */
	if ((s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(err, NETIF_ERROR_MAX, "interface %s: cannot set address %s: %s%s", name,
			 text, strerror(errno),
			 errno == EAFNOSUPPORT ? " (is IPv6 disabled on this host?)" : "");
		return -1;
	}
	req.ifr6_addr = *addr;
	req.ifr6_prefixlen = prefix_len;
	if (ioctl(s, SIOCSIFADDR, &req) < 0 && errno != EEXIST) {
		snprintf(err, NETIF_ERROR_MAX, "interface %s: cannot set address %s/%u: %s%s", name,
			 text, prefix_len, strerror(errno),
			 errno == EACCES ? " (is IPv6 disabled on it? see disable_ipv6)" : "");
		rc = -1;
	}
	close(s);
	return rc;
}

int
netif_set_group(const char *name, uint32_t group, char *err)
{
	struct {
		struct nlmsghdr header;
		struct ifinfomsg info;
		struct rtattr attr;
		uint32_t group;
	} req = { 0 };
	struct {
		struct nlmsghdr header;
		struct nlmsgerr error;
	} ack;
	ssize_t n;
	int s, rc = -1;

	if (check_name(name, err) < 0)
		return -1;
	if ((req.info.ifi_index = (int)if_nametoindex(name)) == 0) {
		snprintf(err, NETIF_ERROR_MAX, "interface %s: %s", name, strerror(errno));
		return -1;
	}
	req.header.nlmsg_len = sizeof(req);
	req.header.nlmsg_type = RTM_SETLINK;
	req.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.header.nlmsg_seq = 1;
	req.info.ifi_family = AF_UNSPEC;
	req.attr.rta_type = IFLA_GROUP;
	req.attr.rta_len = RTA_LENGTH(sizeof(req.group));
	req.group = group;
	if ((s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) < 0) {
		snprintf(err, NETIF_ERROR_MAX, "interface %s: netlink: %s", name, strerror(errno));
		return -1;
	}
	if (send(s, &req, sizeof(req), 0) != (ssize_t)sizeof(req)) {
		snprintf(err, NETIF_ERROR_MAX, "interface %s: cannot set group %u: %s", name, group,
			 strerror(errno));
		goto out;
	}
	n = recv(s, &ack, sizeof(ack), 0);
	if (n < (ssize_t)sizeof(ack) || ack.header.nlmsg_type != NLMSG_ERROR) {
		snprintf(err, NETIF_ERROR_MAX, "interface %s: cannot set group %u: %s", name, group,
			 n < 0 ? strerror(errno) : "no answer from the kernel");
		goto out;
	}
	if (ack.error.error != 0) {
		snprintf(err, NETIF_ERROR_MAX, "interface %s: cannot set group %u: %s", name, group,
			 strerror(-ack.error.error));
		goto out;
	}
	rc = 0;
out:
	close(s);
	return rc;
}

/* A group number as iproute2 writes them: decimal or 0x hex, 32 bits. */
static int
parse_group_number(const char *text, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)text[0]))
		return -1;
	errno = 0;
	v = strtoull(text, &end, 0);
	if (errno != 0 || *end != '\0' || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* Looks name up in one group file ("NUMBER NAME" lines, # comments). */
static int
group_in_file(FILE *f, const char *group, uint32_t *out)
{
	char line[256], number[64], name[64];

	while (fgets(line, sizeof(line), f) != NULL) {
		char *hash = strchr(line, '#');

		if (hash != NULL)
			*hash = '\0';
		if (sscanf(line, "%63s %63s", number, name) == 2 && strcmp(name, group) == 0 &&
		    parse_group_number(number, out) == 0)
			return 0;
	}
	return -1;
}

int
netif_group_number(const char *group, const char *const files[], uint32_t *out)
{
	if (parse_group_number(group, out) == 0)
		return 0;
	for (int i = 0; files[i] != NULL; i++) {
		FILE *f = fopen(files[i], "re");
		int rc;

		if (f == NULL)
			continue;
		rc = group_in_file(f, group, out);
		fclose(f);
		return rc;
	}
	return -1;
}
