/*
 * The local interfaces' DHCP server: see dhcp.h.  The frame is read with
 * explicit offsets and every field is checked against the lengths the
 * frame really has, not those it claims.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "net/dhcp.h"

#define ETH_HEADER	14
#define ETH_TYPE_IPV4	0x0800
#define IP_HEADER_MIN	20
#define IP_PROTO_UDP	17
#define UDP_HEADER	8
#define PORT_SERVER	67
#define PORT_CLIENT	68
#define BOOTP_FIXED	236 /* op through file */
#define BOOTP_OPTIONS	240 /* after the magic cookie */
#define BOOTP_MIN	300 /* the smallest BOOTP message clients must accept */
#define BOOTP_REQUEST	1
#define BOOTP_REPLY	2
#define BOOTP_BROADCAST 0x8000
#define DHCP_MAGIC	0x63825363u

/* BOOTP message offsets. */
#define B_OP	 0
#define B_HTYPE	 1
#define B_HLEN	 2
#define B_XID	 4
#define B_FLAGS	 10
#define B_CIADDR 12
#define B_YIADDR 16
#define B_GIADDR 24
#define B_CHADDR 28
#define B_MAGIC	 236

/* Options. */
#define OPT_PAD		 0
#define OPT_SUBNET_MASK	 1
#define OPT_ROUTER	 3
#define OPT_DNS		 6
#define OPT_HOSTNAME	 12
#define OPT_REQUESTED_IP 50
#define OPT_LEASE_TIME	 51
#define OPT_MESSAGE_TYPE 53
#define OPT_SERVER_ID	 54
#define OPT_END		 255

/* What the server needs of a client's message. */
struct dhcp_request {
	const uint8_t *bootp;
	uint8_t type;	     /* 0: no message type option */
	uint32_t requested;  /* option 50, network order; 0: none */
	uint32_t server_id;  /* option 54, network order; 0: none */
};

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int
dhcp_local_addresses(struct in_addr prefix, uint32_t prefix_len, uint32_t vm_id, uint32_t index,
		     struct in_addr *host, struct in_addr *guest, char *err, size_t errlen)
{
	uint64_t offset = (uint64_t)vm_id * 256 + (uint64_t)index * 2;
	uint64_t room = prefix_len >= 32 ? 1 : (uint64_t)1 << (32 - prefix_len);
	uint32_t base = ntohl(prefix.s_addr);
	char text[INET_ADDRSTRLEN];

	if (prefix_len > 32 || index >= 128 || offset + 1 >= room) {
		inet_ntop(AF_INET, &prefix, text, sizeof(text));
		snprintf(err, errlen,
			 "local prefix %s/%u: no room for VM id %u, interface %u (a shorter prefix has)",
			 text, prefix_len, vm_id, index);
		return -1;
	}
	if (prefix_len > 0)
		base &= ~(uint32_t)0 << (32 - prefix_len);
	else
		base = 0;
	host->s_addr = htonl(base + (uint32_t)offset);
	guest->s_addr = htonl(base + (uint32_t)offset + 1);
	return 0;
}

/* The UDP payload of an IPv4 UDP frame to port, or NULL; *plen its length. */
static const uint8_t *
udp_payload(const uint8_t *frame, size_t len, uint16_t port, size_t *plen)
{
	const uint8_t *ip = frame + ETH_HEADER, *udp;
	size_t ihl, total, udplen;

	if (len < ETH_HEADER + IP_HEADER_MIN || get16(frame + 12) != ETH_TYPE_IPV4)
		return NULL;
	ihl = (size_t)(ip[0] & 0x0f) * 4;
	total = get16(ip + 2);
	/* Ethernet pads short frames: the IP length says where the datagram ends. */
	if ((ip[0] >> 4) != 4 || ihl < IP_HEADER_MIN || total < ihl + UDP_HEADER ||
	    total > len - ETH_HEADER || ip[9] != IP_PROTO_UDP || (get16(ip + 6) & 0x1fff) != 0)
		return NULL;
	udp = ip + ihl;
	if (get16(udp + 2) != port)
		return NULL;
	udplen = get16(udp + 4);
	if (udplen < UDP_HEADER || udplen > total - ihl)
		return NULL;
	*plen = udplen - UDP_HEADER;
	return udp + UDP_HEADER;
}

bool
dhcp_is_server_frame(const uint8_t *frame, size_t len)
{
	const uint8_t *ip = frame + ETH_HEADER;
	size_t ihl;

	if (len < ETH_HEADER + IP_HEADER_MIN || get16(frame + 12) != ETH_TYPE_IPV4)
		return false;
	ihl = (size_t)(ip[0] & 0x0f) * 4;
	/* A first fragment carries the UDP header; later ones do not, and pass. */
	return (ip[0] >> 4) == 4 && ihl >= IP_HEADER_MIN && ip[9] == IP_PROTO_UDP &&
	       (get16(ip + 6) & 0x1fff) == 0 && len >= ETH_HEADER + ihl + UDP_HEADER &&
	       get16(ip + ihl + 2) == PORT_SERVER;
}

/* Reads the client's message; -1 when it is not a well-formed DHCP request. */
static int
parse_request(const uint8_t *bootp, size_t len, struct dhcp_request *req)
{
	size_t i = BOOTP_OPTIONS;

	memset(req, 0, sizeof(*req));
	if (len < BOOTP_OPTIONS || bootp[B_OP] != BOOTP_REQUEST || bootp[B_HTYPE] != 1 ||
	    bootp[B_HLEN] != 6 || get32(bootp + B_MAGIC) != DHCP_MAGIC)
		return -1;
	req->bootp = bootp;
	while (i < len) {
		uint8_t code = bootp[i], optlen;
		const uint8_t *value;

		if (code == OPT_END)
			return 0;
		if (code == OPT_PAD) {
			i++;
			continue;
		}
		if (i + 2 > len || i + 2 + bootp[i + 1] > len)
			return -1; /* an option that runs past the message */
		optlen = bootp[i + 1];
		value = bootp + i + 2;
		if (code == OPT_MESSAGE_TYPE && optlen == 1)
			req->type = value[0];
		else if (code == OPT_REQUESTED_IP && optlen == 4)
			memcpy(&req->requested, value, 4);
		else if (code == OPT_SERVER_ID && optlen == 4)
			memcpy(&req->server_id, value, 4);
		i += 2 + (size_t)optlen;
	}
	return 0; /* no end option: what was there is still usable */
}

static uint32_t
checksum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t
checksum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static size_t
put_option(uint8_t *p, uint8_t code, const void *value, uint8_t len)
{
	p[0] = code;
	p[1] = len;
	memcpy(p + 2, value, len);
	return 2 + (size_t)len;
}

/* The BOOTP reply message at out (room for BOOTP_MIN + options); returns its length. */
static size_t
build_bootp(const struct dhcp_lease *lease, const struct dhcp_request *req, uint8_t type,
	    uint8_t *out)
{
	uint32_t mask = htonl(lease->prefix_len ? ~(uint32_t)0 << (32 - lease->prefix_len) : 0);
	uint32_t lease_time = htonl(DHCP_LEASE_SECONDS), magic = htonl(DHCP_MAGIC);
	size_t n = BOOTP_OPTIONS, hostlen = strnlen(lease->hostname, sizeof(lease->hostname));

	memset(out, 0, BOOTP_MIN);
	out[B_OP] = BOOTP_REPLY;
	out[B_HTYPE] = 1;
	out[B_HLEN] = 6;
	memcpy(out + B_XID, req->bootp + B_XID, 4);
	memcpy(out + B_FLAGS, req->bootp + B_FLAGS, 2);
	if (type == DHCP_ACK)
		memcpy(out + B_CIADDR, req->bootp + B_CIADDR, 4);
	if (type != DHCP_NAK)
		memcpy(out + B_YIADDR, &lease->client, 4);
	memcpy(out + B_GIADDR, req->bootp + B_GIADDR, 4);
	memcpy(out + B_CHADDR, req->bootp + B_CHADDR, 16);
	memcpy(out + B_MAGIC, &magic, 4);
	n += put_option(out + n, OPT_MESSAGE_TYPE, &type, 1);
	n += put_option(out + n, OPT_SERVER_ID, &lease->server, 4);
	if (type != DHCP_NAK) {
		n += put_option(out + n, OPT_LEASE_TIME, &lease_time, 4);
		n += put_option(out + n, OPT_SUBNET_MASK, &mask, 4);
		n += put_option(out + n, OPT_ROUTER, &lease->server, 4);
		n += put_option(out + n, OPT_DNS, &lease->server, 4);
		if (hostlen > 0 && hostlen < sizeof(lease->hostname))
			n += put_option(out + n, OPT_HOSTNAME, lease->hostname, (uint8_t)hostlen);
	}
	out[n++] = OPT_END;
	if (n < BOOTP_MIN) {
		memset(out + n, 0, BOOTP_MIN - n);
		n = BOOTP_MIN;
	}
	return n;
}

/* Wraps the BOOTP message (already at reply + 42) in UDP, IPv4 and Ethernet. */
static size_t
wrap_reply(const struct dhcp_lease *lease, const struct dhcp_request *req, uint8_t type,
	   uint8_t *reply, size_t bootp_len)
{
	static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	bool to_all = (get16(req->bootp + B_FLAGS) & BOOTP_BROADCAST) || type == DHCP_NAK;
	uint32_t dst = to_all ? INADDR_BROADCAST : lease->client.s_addr, sum;
	uint8_t *ip = reply + ETH_HEADER, *udp = ip + IP_HEADER_MIN;
	uint16_t udplen = (uint16_t)(UDP_HEADER + bootp_len);

	if (to_all)
		dst = htonl(INADDR_BROADCAST);
	memcpy(reply, to_all ? broadcast : req->bootp + B_CHADDR, 6);
	memcpy(reply + 6, lease->server_mac, 6);
	put16(reply + 12, ETH_TYPE_IPV4);
	memset(ip, 0, IP_HEADER_MIN);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(IP_HEADER_MIN + udplen));
	ip[8] = 64;
	ip[9] = IP_PROTO_UDP;
	memcpy(ip + 12, &lease->server, 4);
	memcpy(ip + 16, &dst, 4);
	put16(ip + 10, checksum_fold(checksum_add(0, ip, IP_HEADER_MIN)));
	put16(udp, PORT_SERVER);
	put16(udp + 2, PORT_CLIENT);
	put16(udp + 4, udplen);
	put16(udp + 6, 0);
	/* The pseudo-header: addresses, protocol, UDP length. */
	sum = checksum_add(0, ip + 12, 8) + IP_PROTO_UDP + udplen;
	sum = checksum_fold(checksum_add(sum, udp, udplen));
	put16(udp + 6, sum == 0 ? 0xffff : (uint16_t)sum);
	return ETH_HEADER + IP_HEADER_MIN + udplen;
}

size_t
dhcp_answer(const struct dhcp_lease *lease, const uint8_t *frame, size_t len, uint8_t *reply,
	    size_t replylen)
{
	struct dhcp_request req;
	const uint8_t *bootp;
	size_t plen, bootp_len;
	uint8_t type;

	if (replylen < DHCP_REPLY_MAX || (bootp = udp_payload(frame, len, PORT_SERVER, &plen)) == NULL ||
	    parse_request(bootp, plen, &req) < 0)
		return 0;
	switch (req.type) {
	case DHCP_DISCOVER:
		type = DHCP_OFFER;
		break;
	case DHCP_REQUEST: {
		uint32_t wanted = req.requested ? req.requested : 0;

		if (req.server_id != 0 && req.server_id != lease->server.s_addr)
			return 0; /* it chose another server */
		if (wanted == 0)
			memcpy(&wanted, bootp + B_CIADDR, 4);
		type = wanted == lease->client.s_addr ? DHCP_ACK : DHCP_NAK;
		break;
	}
	default:
		return 0; /* BOOTP, DECLINE, RELEASE, INFORM, and server messages */
	}
	bootp_len = build_bootp(lease, &req, type, reply + ETH_HEADER + IP_HEADER_MIN + UDP_HEADER);
	return wrap_reply(lease, &req, type, reply, bootp_len);
}
