/*
 * Host network interfaces for the priv process: Linux bridges (a vm.conf
 * `switch`), their ports, link state, IPv4 and IPv6 addresses and device
 * groups.  Everything but the groups goes through the classic ioctls
 * (SIOCBRADDBR, SIOCBRADDIF, SIOCSIFFLAGS, SIOCSIFADDR), which need no
 * netlink message building and no `ip` binary.
 * Each function returns 0, or -1 with a message naming the interface and
 * the cause in err (NETIF_ERROR_MAX bytes).
 */
#ifndef VMD_NETIF_H
#define VMD_NETIF_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#define NETIF_ERROR_MAX 256
#define NETIF_BRIDGE_PREFIX "vmdsw-"

/*
 * The bridge a switch uses when vm.conf names no `interface`:
 * "vmdsw-NAME" when that fits IFNAMSIZ and is a valid interface name,
 * otherwise "vmdsw-" and a hash of the name.
 */
void netif_default_bridge(const char *switch_name, char out[IFNAMSIZ]);

/* Whether an interface of that name exists, and whether it is a bridge. */
bool netif_exists(const char *name);
bool netif_is_bridge(const char *name);

/*
 * Creates the bridge, or adopts the one that exists (*created says which);
 * an existing interface that is not a bridge is an error.
 */
int netif_bridge_create(const char *name, bool *created, char *err);
/* Takes the bridge down and deletes it (its ports leave it). */
int netif_bridge_destroy(const char *name, char *err);
/* Makes port a port of bridge. */
int netif_bridge_add_port(const char *bridge, const char *port, char *err);
/* Takes port off bridge; a port of another bridge, or of none, is left alone. */
int netif_bridge_remove_port(const char *bridge, const char *port, char *err);
/* Whether port is a port of bridge. */
bool netif_is_port_of(const char *bridge, const char *port);

/* Sets the interface up or down. */
int netif_set_up(const char *name, bool up, char *err);
/* Gives the interface the IPv4 address addr/prefix_len. */
int netif_set_addr4(const char *name, struct in_addr addr, unsigned prefix_len, char *err);
/* Adds the IPv6 address addr/prefix_len to the interface (one it has already is fine). */
int netif_add_addr6(const char *name, const struct in6_addr *addr, unsigned prefix_len,
		    char *err);

/*
 * Device groups (ip link set ... group, IFLA_GROUP): Linux's numeric
 * stand-in for interface groups, which nftables matches with iifgroup and
 * oifgroup.  netif_set_group sets one over rtnetlink (there is no ioctl).
 */
int netif_set_group(const char *name, uint32_t group, char *err);
/* The files that name groups, as iproute2 reads them: the first that exists. */
#define NETIF_GROUP_FILES "/etc/iproute2/group", "/usr/share/iproute2/group"
/*
 * The number of a group: a decimal number, or a name that the first of the
 * files (NULL-terminated list) that exists maps to one.  Returns 0 or -1.
 */
int netif_group_number(const char *group, const char *const files[], uint32_t *out);

#endif
