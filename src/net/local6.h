/*
 * IPv6 on local interfaces (vm.conf `local inet6`): each local interface
 * gets its own /64 from the local inet6 prefix, numbered as its IPv4 /31
 * is (VM id * 128 + interface index), with the host's tap at ::1 and the
 * guest's address at ::2.  vmd puts ::1 on the tap; the guest configures
 * ::2 (vmd sends no router advertisements and answers no DHCPv6).
 */
#ifndef VMD_LOCAL6_H
#define VMD_LOCAL6_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define LOCAL6_SUBNET_LEN 64

/*
 * The addresses of local interface index of VM vm_id in prefix/prefix_len
 * (at most /64).  Returns 0, or -1 with err when the prefix has no room.
 */
int local6_addresses(const struct in6_addr *prefix, uint32_t prefix_len, uint32_t vm_id,
		     uint32_t index, struct in6_addr *host, struct in6_addr *guest, char *err,
		     size_t errlen);

#endif
