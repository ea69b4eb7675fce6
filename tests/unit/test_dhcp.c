/*
 * The local interfaces' DHCP server (src/net/dhcp.c) against frames that
 * busybox udhcpc 1.35 really sent (captured on a veth pair), and against
 * truncated, corrupted and foreign frames: a guest's frame never crashes it.
 * Also the /31 address plan and the default bridge names.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/dhcp.h"
#include "net/netif.h"
#include "unit/check.h"

/* udhcpc -i veth0 on 52:54:00:12:34:56: its DHCPDISCOVER (342 bytes). */
static const char discover_hex[] =
	"ffffffffffff52540012345608004500014800000000401179a600000000ffffffff0044004301348c1401010600fb20"
	"6e5e00000000000000000000000000000000000000005254001234560000000000000000000000000000000000000000"
	"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
	"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
	"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
	"000000000000000000000000000000000000000000000000000000000000000000000000000063825363350101390202"
	"4037070103060c0f1c2a3c0c756468637020312e33352e303d0701525400123456ff0000000000000000000000000000"
	"000000000000";

/* Its DHCPREQUEST for 100.64.1.1 from server 100.64.1.0 (342 bytes). */
static const char request_hex[] =
	"ffffffffffff52540012345608004500014800000000401179a600000000ffffffff004400430134ffe101010600fb20"
	"6e5e00000000000000000000000000000000000000005254001234560000000000000000000000000000000000000000"
	"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
	"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
	"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
	"000000000000000000000000000000000000000000000000000000000000000000000000000063825363350103320464"
	"4001013604644001003902024037070103060c0f1c2a3c0c756468637020312e33352e303d0701525400123456ff0000"
	"000000000000";

static uint8_t discover[400], request[400];
static size_t discover_len, request_len;
static struct dhcp_lease lease;

static size_t
from_hex(const char *hex, uint8_t *out)
{
	size_t n = strlen(hex) / 2;

	for (size_t i = 0; i < n; i++) {
		char byte[3] = { hex[2 * i], hex[2 * i + 1], 0 };

		out[i] = (uint8_t)strtoul(byte, NULL, 16);
	}
	return n;
}

static void
setup(void)
{
	discover_len = from_hex(discover_hex, discover);
	request_len = from_hex(request_hex, request);
	memset(&lease, 0, sizeof(lease));
	inet_pton(AF_INET, "100.64.1.0", &lease.server);
	inet_pton(AF_INET, "100.64.1.1", &lease.client);
	lease.prefix_len = 31;
	memcpy(lease.server_mac, (uint8_t[6]){ 0xfe, 0xe1, 0xba, 0xd0, 0, 1 }, 6);
	strcpy(lease.hostname, "guest1");
}

static uint32_t
sum16(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

/* The value of option code in a reply frame, or NULL; *len its length. */
static const uint8_t *
option(const uint8_t *frame, size_t flen, uint8_t code, uint8_t *len)
{
	size_t i = 42 + 240;

	while (i + 1 < flen && frame[i] != 255) {
		if (frame[i] == 0) {
			i++;
			continue;
		}
		if (frame[i] == code) {
			*len = frame[i + 1];
			return frame + i + 2;
		}
		i += 2 + (size_t)frame[i + 1];
	}
	return NULL;
}

static bool
option_is(const uint8_t *frame, size_t flen, uint8_t code, const void *want, uint8_t wantlen)
{
	uint8_t len = 0;
	const uint8_t *v = option(frame, flen, code, &len);

	return v != NULL && len == wantlen && memcmp(v, want, wantlen) == 0;
}

/* Checks what every reply has: headers, checksums, addresses, the client's ids. */
static void
check_reply_frame(const uint8_t *r, size_t n, const uint8_t *req, uint8_t type)
{
	static const uint8_t client_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	uint8_t pseudo[12];
	size_t udplen;

	CHECK(n >= 42 + 300 && n <= DHCP_REPLY_MAX);
	CHECK(memcmp(r + 6, lease.server_mac, 6) == 0);
	CHECK(r[12] == 0x08 && r[13] == 0x00);
	CHECK(r[14] == 0x45 && r[23] == 17);
	CHECK((size_t)(r[16] << 8 | r[17]) == n - 14);
	CHECK(sum16(r + 14, 20, 0) == 0xffff); /* the IP header checksum holds */
	CHECK(memcmp(r + 26, &lease.server, 4) == 0);
	CHECK(r[34] == 0 && r[35] == 67 && r[36] == 0 && r[37] == 68);
	udplen = (size_t)(r[38] << 8 | r[39]);
	CHECK(udplen == n - 34);
	memcpy(pseudo, r + 26, 8);
	pseudo[8] = 0;
	pseudo[9] = 17;
	pseudo[10] = (uint8_t)(udplen >> 8);
	pseudo[11] = (uint8_t)udplen;
	CHECK(sum16(r + 34, udplen, sum16(pseudo, 12, 0)) == 0xffff); /* and the UDP one */
	CHECK(r[42] == 2 && r[43] == 1 && r[44] == 6);
	CHECK(memcmp(r + 46, req + 46, 4) == 0); /* xid */
	CHECK(memcmp(r + 70, client_mac, 6) == 0); /* chaddr */
	CHECK(r[42 + 236] == 0x63 && r[42 + 237] == 0x82 && r[42 + 238] == 0x53 && r[42 + 239] == 0x63);
	CHECK(option_is(r, n, 53, &type, 1));
	CHECK(option_is(r, n, 54, &lease.server, 4));
	if (type == DHCP_NAK) {
		CHECK(memcmp(r, "\xff\xff\xff\xff\xff\xff", 6) == 0);
		return;
	}
	/* udhcpc asked without the broadcast flag: unicast to its MAC and address. */
	CHECK(memcmp(r, client_mac, 6) == 0);
	CHECK(memcmp(r + 30, &lease.client, 4) == 0);
	CHECK(memcmp(r + 42 + 16, &lease.client, 4) == 0); /* yiaddr */
	CHECK(option_is(r, n, 1, "\xff\xff\xff\xfe", 4));
	CHECK(option_is(r, n, 3, &lease.server, 4));
	CHECK(option_is(r, n, 6, &lease.server, 4));
	CHECK(option_is(r, n, 51, "\x00\x01\x51\x80", 4)); /* 86400 s */
	CHECK(option_is(r, n, 12, "guest1", 6));
}

static void
test_discover_gets_offer(void)
{
	uint8_t reply[DHCP_REPLY_MAX];
	size_t n;

	setup();
	CHECK(discover_len == 342 && request_len == 342);
	CHECK(dhcp_is_server_frame(discover, discover_len));
	n = dhcp_answer(&lease, discover, discover_len, reply, sizeof(reply));
	check_reply_frame(reply, n, discover, DHCP_OFFER);
}

static void
test_request_gets_ack(void)
{
	uint8_t reply[DHCP_REPLY_MAX];
	size_t n;

	setup();
	n = dhcp_answer(&lease, request, request_len, reply, sizeof(reply));
	check_reply_frame(reply, n, request, DHCP_ACK);
}

/* Finds option code in a client frame: its offset. */
static size_t
client_option(const uint8_t *frame, size_t len, uint8_t code)
{
	for (size_t i = 42 + 240; i + 1 < len && frame[i] != 255; i += frame[i] ? 2 + (size_t)frame[i + 1] : 1)
		if (frame[i] == code)
			return i;
	return 0;
}

static void
test_request_for_another_address_gets_nak(void)
{
	uint8_t reply[DHCP_REPLY_MAX];
	size_t at, n;

	setup();
	at = client_option(request, request_len, 50);
	CHECK(at != 0);
	request[at + 5] = 7; /* asks for 100.64.1.7 */
	n = dhcp_answer(&lease, request, request_len, reply, sizeof(reply));
	check_reply_frame(reply, n, request, DHCP_NAK);
	CHECK(memcmp(reply + 42 + 16, "\0\0\0\0", 4) == 0);
}

static void
test_request_to_another_server_is_ignored(void)
{
	uint8_t reply[DHCP_REPLY_MAX];
	size_t at;

	setup();
	at = client_option(request, request_len, 54);
	CHECK(at != 0);
	request[at + 5] = 9;
	CHECK(dhcp_answer(&lease, request, request_len, reply, sizeof(reply)) == 0);
}

static void
test_other_messages_get_nothing(void)
{
	uint8_t reply[DHCP_REPLY_MAX], frame[400];
	size_t at;

	setup();
	/* DHCPRELEASE and DHCPINFORM: no answer. */
	for (uint8_t type = DHCP_DECLINE; type <= DHCP_INFORM; type++) {
		memcpy(frame, request, request_len);
		at = client_option(frame, request_len, 53);
		frame[at + 2] = type;
		CHECK(dhcp_answer(&lease, frame, request_len, reply, sizeof(reply)) == 0);
	}
	/* A server's message (op 2) sent by the guest. */
	memcpy(frame, discover, discover_len);
	frame[42] = 2;
	CHECK(dhcp_answer(&lease, frame, discover_len, reply, sizeof(reply)) == 0);
	/* A BOOTP request without the DHCP magic cookie. */
	memcpy(frame, discover, discover_len);
	frame[42 + 236] = 0;
	CHECK(dhcp_answer(&lease, frame, discover_len, reply, sizeof(reply)) == 0);
	/* A reply buffer that is too small is never written past. */
	CHECK(dhcp_answer(&lease, discover, discover_len, reply, 100) == 0);
}

static void
test_foreign_frames_pass(void)
{
	uint8_t frame[400], reply[DHCP_REPLY_MAX];

	setup();
	/* To the client port, to DNS, a non-UDP protocol, ARP, IPv6: not the server's. */
	memcpy(frame, discover, discover_len);
	frame[37] = 68;
	CHECK(!dhcp_is_server_frame(frame, discover_len));
	frame[37] = 53;
	CHECK(!dhcp_is_server_frame(frame, discover_len));
	CHECK(dhcp_answer(&lease, frame, discover_len, reply, sizeof(reply)) == 0);
	memcpy(frame, discover, discover_len);
	frame[23] = 6;
	CHECK(!dhcp_is_server_frame(frame, discover_len));
	memcpy(frame, discover, discover_len);
	frame[13] = 0x06;
	CHECK(!dhcp_is_server_frame(frame, discover_len));
	memcpy(frame, discover, discover_len);
	frame[12] = 0x86;
	frame[13] = 0xdd;
	CHECK(!dhcp_is_server_frame(frame, discover_len));
	/* A later fragment has no UDP header: it passes. */
	memcpy(frame, discover, discover_len);
	frame[21] = 0x20;
	CHECK(!dhcp_is_server_frame(frame, discover_len));
}

static void
test_truncated_frames(void)
{
	uint8_t reply[DHCP_REPLY_MAX];

	setup();
	/* Every prefix of a real request, each in a buffer of exactly its size (ASan). */
	for (size_t len = 0; len < discover_len; len++) {
		uint8_t *copy = malloc(len ? len : 1);

		memcpy(copy, discover, len);
		(void)dhcp_is_server_frame(copy, len);
		/* The IP header says 328 bytes: anything shorter is not answered. */
		CHECK(dhcp_answer(&lease, copy, len, reply, sizeof(reply)) == 0);
		free(copy);
	}
}

static void
test_options_running_past_the_end(void)
{
	uint8_t frame[400], reply[DHCP_REPLY_MAX];
	size_t at;

	setup();
	memcpy(frame, discover, discover_len);
	at = client_option(frame, discover_len, 61);
	CHECK(at != 0);
	frame[at + 1] = 255; /* the client id claims 255 bytes */
	CHECK(dhcp_answer(&lease, frame, discover_len, reply, sizeof(reply)) == 0);
	/* An IP header length below 20, a UDP length beyond the datagram. */
	memcpy(frame, discover, discover_len);
	frame[14] = 0x44;
	CHECK(dhcp_answer(&lease, frame, discover_len, reply, sizeof(reply)) == 0);
	memcpy(frame, discover, discover_len);
	frame[38] = 0x10;
	CHECK(dhcp_answer(&lease, frame, discover_len, reply, sizeof(reply)) == 0);
}

/* Random corruption of real frames: never a crash or an overread (ASan). */
static void
test_random_corruption(void)
{
	uint8_t reply[DHCP_REPLY_MAX];
	uint32_t seed = 12345;

	setup();
	for (int round = 0; round < 20000; round++) {
		const uint8_t *base = round & 1 ? request : discover;
		size_t len = round & 1 ? request_len : discover_len;
		uint8_t *frame = malloc(len);

		memcpy(frame, base, len);
		for (int k = 0; k < 1 + round % 8; k++) {
			seed = seed * 1103515245u + 12345u;
			frame[(seed >> 8) % len] = (uint8_t)(seed >> 24);
		}
		seed = seed * 1103515245u + 12345u;
		len -= (seed >> 8) % 16 == 0 ? (seed >> 12) % len : 0;
		if (dhcp_is_server_frame(frame, len))
			(void)dhcp_answer(&lease, frame, len, reply, sizeof(reply));
		free(frame);
	}
}

static void
test_local_addresses(void)
{
	struct in_addr prefix, host, guest;
	char err[256], h[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN];

	inet_pton(AF_INET, "100.64.0.0", &prefix);
	CHECK(dhcp_local_addresses(prefix, 10, 1, 0, &host, &guest, err, sizeof(err)) == 0);
	inet_ntop(AF_INET, &host, h, sizeof(h));
	inet_ntop(AF_INET, &guest, g, sizeof(g));
	CHECK(strcmp(h, "100.64.1.0") == 0 && strcmp(g, "100.64.1.1") == 0);
	CHECK(dhcp_local_addresses(prefix, 10, 300, 3, &host, &guest, err, sizeof(err)) == 0);
	inet_ntop(AF_INET, &host, h, sizeof(h));
	inet_ntop(AF_INET, &guest, g, sizeof(g));
	CHECK(strcmp(h, "100.65.44.6") == 0 && strcmp(g, "100.65.44.7") == 0);
	/* The last VM id a /10 holds, and the first it does not. */
	CHECK(dhcp_local_addresses(prefix, 10, 16383, 127, &host, &guest, err, sizeof(err)) == 0);
	inet_ntop(AF_INET, &guest, g, sizeof(g));
	CHECK(strcmp(g, "100.127.255.255") == 0);
	CHECK(dhcp_local_addresses(prefix, 10, 16384, 0, &host, &guest, err, sizeof(err)) < 0);
	CHECK(strstr(err, "100.64.0.0/10") != NULL && strstr(err, "VM id 16384") != NULL);
	/* A /24 has no room for VM 1; a /16 has, for 255 VMs. */
	inet_pton(AF_INET, "10.1.2.0", &prefix);
	CHECK(dhcp_local_addresses(prefix, 24, 1, 0, &host, &guest, err, sizeof(err)) < 0);
	inet_pton(AF_INET, "10.1.0.0", &prefix);
	CHECK(dhcp_local_addresses(prefix, 16, 255, 0, &host, &guest, err, sizeof(err)) == 0);
	CHECK(dhcp_local_addresses(prefix, 16, 256, 0, &host, &guest, err, sizeof(err)) < 0);
	CHECK(dhcp_local_addresses(prefix, 33, 1, 0, &host, &guest, err, sizeof(err)) < 0);
}

static void
test_default_bridge_names(void)
{
	char a[IFNAMSIZ], b[IFNAMSIZ];

	netif_default_bridge("uplink", a);
	CHECK(strcmp(a, "vmdsw-uplink") == 0);
	netif_default_bridge("123456789", a);
	CHECK(strcmp(a, "vmdsw-123456789") == 0);
	/* Too long, or not a valid interface name: a hash, still unique per name. */
	netif_default_bridge("1234567890", a);
	netif_default_bridge("1234567891", b);
	CHECK(strlen(a) == 14 && strncmp(a, "vmdsw-", 6) == 0 && strcmp(a, b) != 0);
	netif_default_bridge("my switch", a);
	CHECK(strlen(a) == 14 && strchr(a, ' ') == NULL);
	netif_default_bridge("a/b", a);
	CHECK(strchr(a, '/') == NULL);
}

int
main(void)
{
	RUN_TEST(test_discover_gets_offer);
	RUN_TEST(test_request_gets_ack);
	RUN_TEST(test_request_for_another_address_gets_nak);
	RUN_TEST(test_request_to_another_server_is_ignored);
	RUN_TEST(test_other_messages_get_nothing);
	RUN_TEST(test_foreign_frames_pass);
	RUN_TEST(test_truncated_frames);
	RUN_TEST(test_options_running_past_the_end);
	RUN_TEST(test_random_corruption);
	RUN_TEST(test_local_addresses);
	RUN_TEST(test_default_bridge_names);
	TEST_EXIT();
}
