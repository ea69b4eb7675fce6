/*
 * libFuzzer target for the local interfaces' DHCP server: the input is a
 * frame a guest sends (Ethernet first, no virtio header), copied into a
 * buffer of exactly its size so that any overread shows.  Nothing may
 * crash, and a reply never exceeds DHCP_REPLY_MAX or lacks its headers.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/dhcp.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dhcp_lease lease = { .prefix_len = 31, .hostname = "fuzz" };
	uint8_t reply[DHCP_REPLY_MAX];
	uint8_t *frame = malloc(size ? size : 1);
	size_t n;

	lease.server.s_addr = htonl(0x64400100);
	lease.client.s_addr = htonl(0x64400101);
	memcpy(frame, data, size);
	if (dhcp_is_server_frame(frame, size)) {
		n = dhcp_answer(&lease, frame, size, reply, sizeof(reply));
		if (n > sizeof(reply) || (n > 0 && n < 14 + 20 + 8 + 300))
			abort();
	}
	free(frame);
	return 0;
}
