/*
 * Local interfaces (vm.conf `local interface`, `vmctl start -L`): a
 * point-to-point /31 from the local prefix, the even address on the host's
 * tap and the odd one for the guest, and a DHCP server (RFC 2131, 2132) in
 * the VM process that gives the guest its address.  The server sees the
 * frames the guest sends (Ethernet, no virtio header) and answers DHCPDISCOVER
 * with DHCPOFFER and DHCPREQUEST with DHCPACK (or DHCPNAK for another
 * address).  Guest frames are untrusted: every length is checked, and a
 * frame that is not what it should be is answered with nothing.
 */
#ifndef VMD_DHCP_H
#define VMD_DHCP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DHCP_LEASE_SECONDS 86400
#define DHCP_REPLY_MAX	   600 /* Ethernet, IPv4, UDP and a 300-byte BOOTP message with room */
#define DHCP_HOSTNAME_MAX  64

/* What the server gives out on one interface. */
struct dhcp_lease {
	struct in_addr server;	/* the host's tap: server, router and DNS */
	struct in_addr client;	/* the guest's address */
	uint32_t prefix_len;	/* 31 */
	uint8_t server_mac[6];	/* source of the replies */
	char hostname[DHCP_HOSTNAME_MAX]; /* empty: no host name option */
};

/*
 * The addresses of local interface index of VM vm_id in the prefix:
 * prefix + vm_id * 256 + index * 2 (host) and + 1 (guest), as a /31.
 * Returns 0, or -1 with err when the prefix has no room for them.
 */
int dhcp_local_addresses(struct in_addr prefix, uint32_t prefix_len, uint32_t vm_id,
			 uint32_t index, struct in_addr *host, struct in_addr *guest, char *err,
			 size_t errlen);

/* Whether the frame is an IPv4 UDP datagram to port 67: the server's to answer. */
bool dhcp_is_server_frame(const uint8_t *frame, size_t len);

/*
 * The answer to a frame the guest sent: writes the reply frame (Ethernet,
 * IPv4, UDP, BOOTP) into reply and returns its length, or returns 0 when
 * there is nothing to answer (not a DHCP request, malformed, or a message
 * that takes no answer, such as DHCPRELEASE).
 */
size_t dhcp_answer(const struct dhcp_lease *lease, const uint8_t *frame, size_t len,
		   uint8_t *reply, size_t replylen);

/* DHCP message types (option 53). */
enum dhcp_message_type {
	DHCP_DISCOVER = 1,
	DHCP_OFFER = 2,
	DHCP_REQUEST = 3,
	DHCP_DECLINE = 4,
	DHCP_ACK = 5,
	DHCP_NAK = 6,
	DHCP_RELEASE = 7,
	DHCP_INFORM = 8,
};

#endif
