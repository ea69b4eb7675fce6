/* IPv6 addresses of local interfaces: see local6.h. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "net/local6.h"

int
local6_addresses(const struct in6_addr *prefix, uint32_t prefix_len, uint32_t vm_id,
		 uint32_t index, struct in6_addr *host, struct in6_addr *guest, char *err,
		 size_t errlen)
{
	/* The same numbering as the /31s of IPv4: one subnet per VM id and interface. */
	uint64_t subnet = (uint64_t)vm_id * 128 + index, upper = 0;
	uint32_t bits = prefix_len <= LOCAL6_SUBNET_LEN ? LOCAL6_SUBNET_LEN - prefix_len : 0;
	char text[INET6_ADDRSTRLEN];

	if (prefix_len > LOCAL6_SUBNET_LEN || index >= 128 ||
	    (bits < 64 && subnet >= (uint64_t)1 << bits)) {
		inet_ntop(AF_INET6, prefix, text, sizeof(text));
		snprintf(err, errlen,
			 "local inet6 prefix %s/%u: no room for a /64 for VM id %u, interface %u "
			 "(a shorter prefix has)",
			 text, prefix_len, vm_id, index);
		return -1;
	}
	for (int i = 0; i < 8; i++)
		upper = upper << 8 | prefix->s6_addr[i];
	if (bits < 64)
		upper &= ~(uint64_t)0 << bits; /* the prefix's own bits only */
	else
		upper = 0;
	upper |= subnet;
	memset(host, 0, sizeof(*host));
	for (int i = 0; i < 8; i++)
		host->s6_addr[i] = (uint8_t)(upper >> (56 - 8 * i));
	*guest = *host;
	host->s6_addr[15] = 1;
	guest->s6_addr[15] = 2;
	return 0;
}
