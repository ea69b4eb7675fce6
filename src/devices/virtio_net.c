/*
 * virtio-net (virtio 1.x, 5.1) on a tap with IFF_VNET_HDR: the tap speaks
 * the same 12-byte header as the guest, so offloads (checksum, TSO) pass
 * through.  Transmit hands the guest's buffers to writev(2) as they are;
 * receive reads a frame, then spreads it over as many receive buffers as it
 * needs (mergeable buffers) or one big buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/virtio.h"
#include "devices/virtio_net.h"
#include "devices/virtio_pci.h"
#include "net/dhcp.h"
#include "net/tap.h"
#include "vm/vm.h"

#define VIRTIO_ID_NET		 1
#define PCI_CLASS_NETWORK	 0x0200
#define RX_QUEUE		 0
#define TX_QUEUE		 1
#define FRAME_MAX		 (VIRTIO_NET_HDR_BYTES + 65536 + 14 + 4) /* header, 64 KiB GSO frame, VLAN tag */
#define RX_BUFFERS_MAX		 256 /* a frame never needs more mergeable buffers than the queue holds */
#define RX_BATCH		 64  /* frames before the guest hears of them */
#define ETH_PEEK_MAX		 1536 /* a DHCP request fits: 576 bytes and Ethernet */
#define ETH_SOURCE		 6
#define ETH_HEADERS_MAX		 (14 + 60 + 8) /* Ethernet, the longest IPv4 header, UDP */

#define VIRTIO_NET_F_CSUM	 (1ULL << 0)
#define VIRTIO_NET_F_GUEST_CSUM	 (1ULL << 1)
#define VIRTIO_NET_F_MAC	 (1ULL << 5)
#define VIRTIO_NET_F_GUEST_TSO4	 (1ULL << 7)
#define VIRTIO_NET_F_GUEST_TSO6	 (1ULL << 8)
#define VIRTIO_NET_F_GUEST_ECN	 (1ULL << 9)
#define VIRTIO_NET_F_HOST_TSO4	 (1ULL << 11)
#define VIRTIO_NET_F_HOST_TSO6	 (1ULL << 12)
#define VIRTIO_NET_F_HOST_ECN	 (1ULL << 13)
#define VIRTIO_NET_F_MRG_RXBUF	 (1ULL << 15)
#define VIRTIO_NET_F_STATUS	 (1ULL << 16)
#define VIRTIO_NET_S_LINK_UP	 1

/* Header fields. */
#define HDR_FLAGS		 0
#define HDR_GSO_TYPE		 1
#define HDR_HDR_LEN		 2
#define HDR_GSO_SIZE		 4
#define HDR_CSUM_START		 6
#define HDR_CSUM_OFFSET		 8
#define HDR_NUM_BUFFERS		 10
#define HDR_F_NEEDS_CSUM	 1
#define GSO_NONE		 0
#define GSO_TCPV4		 1
#define GSO_UDP			 3
#define GSO_TCPV6		 4
#define GSO_ECN			 0x80

#define CONFIG_MAC		 0
#define CONFIG_STATUS		 6
#define CONFIG_BYTES		 8

struct virtio_net {
	struct virtio_device dev;
	int tap;
	bool on_socket;		  /* a socket stands in for the tap (unit tests, fuzzing): no offloads */
	char ifname[IFNAMSIZ];
	bool waiting_for_buffers; /* a frame is held until the guest posts receive buffers */
	uint64_t rx_dropped;	  /* frames the guest's receive buffers could never hold */
	bool drop_logged;	  /* one log line per reset cycle */
	uint8_t *frame;
	size_t frame_len;	  /* 0: none held */
	struct virtq_chain chain;
	uint16_t rx_heads[RX_BUFFERS_MAX];
	uint32_t rx_lens[RX_BUFFERS_MAX];
	bool tx_error_logged;
	uint8_t mac[6];
	bool locked;		  /* drop frames from any other source MAC */
	bool local;		  /* answer the guest's DHCP (dhcp.h) */
	struct dhcp_lease lease;
	uint8_t peek[ETH_PEEK_MAX]; /* the start of a frame the guest sends */
	uint8_t reply[VIRTIO_NET_HDR_BYTES + DHCP_REPLY_MAX];
	size_t reply_len;	  /* 0: no DHCP reply waits for the guest */
};

int
virtio_net_check_tx(const struct iovec *iov, uint32_t n, uint64_t len, uint64_t features, char *why,
		    size_t whylen)
{
	uint8_t hdr[VIRTIO_NET_HDR_BYTES];
	uint8_t gso;

	if (len < VIRTIO_NET_HDR_BYTES) {
		snprintf(why, whylen, "frame of %llu bytes is shorter than its header", (unsigned long long)len);
		return -1;
	}
	if (len > FRAME_MAX) {
		snprintf(why, whylen, "frame of %llu bytes is longer than %d", (unsigned long long)len, FRAME_MAX);
		return -1;
	}
	iov_copy_from(iov, n, 0, hdr, sizeof(hdr));
	gso = hdr[HDR_GSO_TYPE] & (uint8_t)~GSO_ECN;
	if ((hdr[HDR_FLAGS] & HDR_F_NEEDS_CSUM) && !(features & VIRTIO_NET_F_CSUM)) {
		snprintf(why, whylen, "checksum offload that was not negotiated");
		return -1;
	}
	if ((gso == GSO_TCPV4 && !(features & VIRTIO_NET_F_HOST_TSO4)) ||
	    (gso == GSO_TCPV6 && !(features & VIRTIO_NET_F_HOST_TSO6)) ||
	    (gso != GSO_NONE && gso != GSO_TCPV4 && gso != GSO_TCPV6) ||
	    ((hdr[HDR_GSO_TYPE] & GSO_ECN) && !(features & VIRTIO_NET_F_HOST_ECN))) {
		snprintf(why, whylen, "segmentation offload %#x that was not negotiated", hdr[HDR_GSO_TYPE]);
		return -1;
	}
	return 0;
}

/*
 * Whether a frame stays in the VM process instead of going to the tap: one
 * from a source MAC that a locked interface does not have, or a DHCP
 * request on a local interface, which is answered on the receive side.
 */
static bool
net_intercept(struct virtio_net *net, const struct virtq_chain *c)
{
	size_t len = c->out_len - VIRTIO_NET_HDR_BYTES, n;
	uint8_t source[6];

	if (net->locked) {
		if (len < ETH_SOURCE + 6)
			return true;
		iov_copy_from(c->iov, c->nout, VIRTIO_NET_HDR_BYTES + ETH_SOURCE, source, 6);
		if (memcmp(source, net->mac, 6) != 0)
			return true;
	}
	if (!net->local)
		return false;
	/* The headers first (Ethernet, IPv4 with options, UDP): most frames end the look there. */
	n = iov_copy_from(c->iov, c->nout, VIRTIO_NET_HDR_BYTES, net->peek, len < ETH_HEADERS_MAX ? len : ETH_HEADERS_MAX);
	if (!dhcp_is_server_frame(net->peek, n))
		return false;
	n = iov_copy_from(c->iov, c->nout, VIRTIO_NET_HDR_BYTES, net->peek,
			  len < sizeof(net->peek) ? len : sizeof(net->peek));
	/* One reply waits at a time: a client that asks faster only repeats itself. */
	if (net->reply_len == 0) {
		size_t r = dhcp_answer(&net->lease, net->peek, n, net->reply + VIRTIO_NET_HDR_BYTES,
				       sizeof(net->reply) - VIRTIO_NET_HDR_BYTES);

		if (r > 0) {
			memset(net->reply, 0, VIRTIO_NET_HDR_BYTES);
			net->reply_len = VIRTIO_NET_HDR_BYTES + r;
		}
	}
	return true;
}

static void net_rx(struct virtio_net *net);

/* Sends one frame of the guest's (virtio_serve_fn). */
static long
net_tx_frame(struct virtio_device *dev, int queue, struct virtq_chain *c)
{
	struct virtio_net *net = (struct virtio_net *)dev;
	char why[128];

	if (c->nin) {
		virtio_device_error(dev, "writable buffer in a frame to send");
		return -1;
	}
	if (virtio_net_check_tx(c->iov, c->nout, c->out_len, dev->driver_features, why, sizeof(why)) < 0) {
		virtio_device_error(dev, "%s", why);
		return -1;
	}
	/* A full or down tap drops the frame, as a wire would. */
	if (!net_intercept(net, c) && writev(net->tap, c->iov, (int)c->nout) < 0 && errno != EAGAIN &&
	    errno != EIO && !net->tx_error_logged) {
		log_warn("%s: %s", dev->name, net->ifname);
		net->tx_error_logged = true;
	}
	virtq_push(&dev->queues[queue], c->head, 0);
	return (long)c->out_len;
}

static void
net_tx(struct virtio_net *net)
{
	struct virtio_device *dev = &net->dev;

	if (virtio_serve_requests(dev, TX_QUEUE, &net->chain, net_tx_frame) < 0)
		return;
	/* One interrupt for all that was sent: each costs the guest an exit. */
	virtio_queue_interrupt(dev, TX_QUEUE);
	if (net->reply_len > 0)
		net_rx(net);
}

/* Takes a receive buffer; 1 taken, 0 none, -1 broken. */
static int
rx_take(struct virtio_net *net, struct virtq *q)
{
	int rc = virtq_pop(q, &net->chain);

	if (rc < 0) {
		virtio_device_error(&net->dev, "receive queue: %s", q->error);
		return -1;
	}
	if (rc == 1 && (net->chain.nout || net->chain.in_len < VIRTIO_NET_HDR_BYTES)) {
		virtio_device_error(&net->dev, "receive buffer is readable or shorter than the header");
		return -1;
	}
	return rc;
}

/*
 * Drops the held frame that the guest's buffers can never hold; the device
 * goes on with the next frame and the guest keeps its buffers.
 */
static void
rx_drop(struct virtio_net *net, const char *why)
{
	net->rx_dropped++;
	if (!net->drop_logged) {
		log_warnx("%s: dropped a received frame of %zu bytes: %s", net->dev.name,
			  net->frame_len - VIRTIO_NET_HDR_BYTES, why);
		net->drop_logged = true;
	}
}

/* Puts the held frame into mergeable buffers; 1 done (or dropped), 0 out of buffers, -1 broken. */
static int
rx_merge(struct virtio_net *net, struct virtq *q)
{
	struct iovec count_at[2];
	uint32_t ncount = 0;
	uint16_t buffers = 0;
	size_t copied = 0;

	while (copied < net->frame_len) {
		int rc;
		size_t take;

		/*
		 * The guest can post no more while we hold the whole ring (or
		 * as many buffers as a frame may take): waiting would never end.
		 */
		if (buffers == q->size || buffers == RX_BUFFERS_MAX) {
			virtq_unpop(q, buffers);
			rx_drop(net, "more than all the receive buffers the guest can post");
			return 1;
		}
		rc = rx_take(net, q);
		if (rc <= 0) {
			virtq_unpop(q, buffers);
			return rc;
		}
		if (buffers == 0) /* where num_buffers goes, known only at the end */
			ncount = iov_slice(net->chain.iov, net->chain.nin, HDR_NUM_BUFFERS, 2, count_at, 2);
		take = net->frame_len - copied;
		if (take > net->chain.in_len)
			take = net->chain.in_len;
		iov_copy_to(net->chain.iov, net->chain.nin, 0, net->frame + copied, take);
		net->rx_heads[buffers] = net->chain.head;
		net->rx_lens[buffers] = (uint32_t)take;
		buffers++;
		copied += take;
	}
	virtio_put16((uint8_t *)&buffers, buffers);
	iov_copy_to(count_at, ncount, 0, &buffers, 2);
	for (uint16_t i = 0; i < buffers; i++)
		virtq_fill(q, net->rx_heads[i], net->rx_lens[i]);
	virtq_publish(q);
	return 1;
}

/* Puts the held frame into one buffer; a frame that does not fit is dropped. */
static int
rx_single(struct virtio_net *net, struct virtq *q)
{
	int rc = rx_take(net, q);

	if (rc <= 0)
		return rc;
	if (net->chain.in_len < net->frame_len) {
		virtq_unpop(q, 1); /* too big for what the guest accepts: drop it, keep the buffer */
		rx_drop(net, "longer than the guest's receive buffer");
		return 1;
	}
	virtio_put16(net->frame + HDR_NUM_BUFFERS, 1);
	iov_copy_to(net->chain.iov, net->chain.nin, 0, net->frame, net->frame_len);
	virtq_push(q, net->chain.head, (uint32_t)net->frame_len);
	return 1;
}

/* Holds the next frame for the guest, a DHCP reply first; 1 held, 0 a runt skipped, -1 none. */
static int
rx_next_frame(struct virtio_net *net)
{
	ssize_t n;

	if (net->reply_len > 0) {
		memcpy(net->frame, net->reply, net->reply_len);
		net->frame_len = net->reply_len;
		net->reply_len = 0;
		return 1;
	}
	n = read(net->tap, net->frame, FRAME_MAX);
	if (n < 0 && errno != EAGAIN && errno != EINTR && !net->tx_error_logged) {
		log_warn("%s: %s", net->dev.name, net->ifname);
		net->tx_error_logged = true;
	}
	if (n < 0)
		return -1;
	if (n < VIRTIO_NET_HDR_BYTES)
		return 0;
	net->frame_len = (size_t)n;
	return 1;
}

/*
 * Moves frames from the tap to the guest until either runs dry or the
 * call's budget is spent (the tap, still polled, brings the thread back).
 * Out of buffers, it waits for the guest to post more: it looks again only
 * when the guest did, never at the same buffers.
 */
static void
net_rx(struct virtio_net *net)
{
	struct virtio_device *dev = &net->dev;
	struct virtq *q = &dev->queues[RX_QUEUE];
	bool merge = virtio_has_feature(dev, VIRTIO_NET_F_MRG_RXBUF);
	struct virtio_budget budget = VIRTIO_BUDGET;
	int delivered = 0;

	if (!q->running)
		return;
	for (;;) {
		size_t len;
		int rc;

		if (net->frame_len == 0 && (rc = rx_next_frame(net)) <= 0) {
			if (rc < 0 || !virtio_budget_spend(&budget, 0))
				break;
			continue;
		}
		len = net->frame_len;
		rc = merge ? rx_merge(net, q) : rx_single(net, q);
		if (rc < 0)
			return;
		if (rc == 0) {
			/* Out of buffers: hold the frame, stop reading the tap until the guest posts more. */
			if (virtq_arm_notification(q)) {
				if (virtio_budget_spend(&budget, 0))
					continue;
				virtio_queue_yield(dev, RX_QUEUE); /* the guest already passed the notification */
				break;
			}
			net->waiting_for_buffers = true;
			virtio_poll_extra(dev, false);
			break;
		}
		net->frame_len = 0;
		if (++delivered % RX_BATCH == 0)
			virtio_queue_interrupt(dev, RX_QUEUE);
		if (!virtio_budget_spend(&budget, len))
			break;
	}
	if (!net->waiting_for_buffers)
		virtio_poll_extra(dev, true);
	virtio_queue_interrupt(dev, RX_QUEUE);
}

static void
net_queue_notified(struct virtio_device *dev, int queue)
{
	struct virtio_net *net = (struct virtio_net *)dev;

	if (queue == TX_QUEUE) {
		net_tx(net);
	} else if (queue == RX_QUEUE) {
		net->waiting_for_buffers = false;
		net_rx(net);
	}
}

static void
net_tap_ready(struct virtio_device *dev)
{
	net_rx((struct virtio_net *)dev);
}

/* What the guest accepts on receive decides what the tap may hand us. */
static int
net_start(struct virtio_device *dev)
{
	struct virtio_net *net = (struct virtio_net *)dev;
	unsigned offloads = 0;

	if (virtio_has_feature(dev, VIRTIO_NET_F_GUEST_CSUM)) {
		offloads |= TUN_F_CSUM;
		if (virtio_has_feature(dev, VIRTIO_NET_F_GUEST_TSO4))
			offloads |= TUN_F_TSO4;
		if (virtio_has_feature(dev, VIRTIO_NET_F_GUEST_TSO6))
			offloads |= TUN_F_TSO6;
		if (virtio_has_feature(dev, VIRTIO_NET_F_GUEST_ECN))
			offloads |= TUN_F_TSO_ECN;
	}
	if (!net->on_socket && tap_set_offload(net->tap, offloads) < 0) {
		log_warn("%s: %s: offloads %#x", dev->name, net->ifname, offloads);
		return -1;
	}
	net->waiting_for_buffers = false;
	net->frame_len = 0;
	virtio_poll_extra(dev, true);
	return 0;
}

static void
net_reset(struct virtio_device *dev)
{
	struct virtio_net *net = (struct virtio_net *)dev;

	virtio_poll_extra(dev, false);
	net->frame_len = 0;
	net->reply_len = 0;
	net->waiting_for_buffers = false;
	net->tx_error_logged = false;
	net->drop_logged = false;
}

static const struct virtio_device_ops virtio_net_ops = {
	.name = "virtio-net",
	.device_id = VIRTIO_ID_NET,
	.pci_class = PCI_CLASS_NETWORK,
	.queue_notified = net_queue_notified,
	.extra_ready = net_tap_ready,
	.start = net_start,
	.reset = net_reset,
};

/* A MAC that stays the same for the same tap name: locally administered, unicast. */
static void
net_stable_mac(const char *ifname, uint8_t mac[6])
{
	uint32_t hash = 2166136261u; /* FNV-1a */

	for (const char *p = ifname; *p; p++)
		hash = (hash ^ (uint8_t)*p) * 16777619u;
	mac[0] = 0x02;
	mac[1] = 0x76; /* "vm" */
	mac[2] = 0x6d;
	mac[3] = (uint8_t)(hash >> 16);
	mac[4] = (uint8_t)(hash >> 8);
	mac[5] = (uint8_t)hash;
}

/* The device on fd (a tap, or a socket), not yet on a transport; NULL with the reason logged. */
static struct virtio_net *
net_create(struct vm *vm, const char *name, int fd, uint64_t features)
{
	struct virtio_net *net = calloc(1, sizeof(*net));

	if (net == NULL || (net->frame = malloc(FRAME_MAX)) == NULL) {
		log_warn("%s", name);
		free(net);
		return NULL;
	}
	net->tap = fd;
	if (virtio_device_init(&net->dev, vm, &virtio_net_ops, name, 2, features, CONFIG_BYTES) < 0) {
		free(net->frame);
		free(net);
		return NULL;
	}
	virtio_put16(net->dev.config + CONFIG_STATUS, VIRTIO_NET_S_LINK_UP);
	net->dev.extra_fd = fd;
	return net;
}

int
virtio_net_add(struct vm *vm, int index, const struct vm_tap *tap)
{
	struct virtio_net *net;
	uint64_t features = VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS | VIRTIO_NET_F_MRG_RXBUF | VIRTIO_NET_F_CSUM |
			    VIRTIO_NET_F_HOST_TSO4 | VIRTIO_NET_F_HOST_TSO6 | VIRTIO_NET_F_HOST_ECN;
	char name[32], ifname[IFNAMSIZ], err[TAP_ERROR_MAX];
	uint8_t mac[6];

	snprintf(name, sizeof(name), "virtio-net%d", index);
	if (tap_prepare(tap->fd, ifname, err) < 0) {
		log_warnx("%s: %s", name, err);
		return -1;
	}
	if (tap_has_offloads(tap->fd))
		features |= VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4 | VIRTIO_NET_F_GUEST_TSO6 |
			    VIRTIO_NET_F_GUEST_ECN;
	if ((net = net_create(vm, name, tap->fd, features)) == NULL)
		return -1;
	memcpy(net->ifname, ifname, sizeof(net->ifname));
	if (tap->lladdr_set)
		memcpy(mac, tap->lladdr, 6);
	else
		net_stable_mac(net->ifname, mac);
	memcpy(net->dev.config + CONFIG_MAC, mac, 6);
	memcpy(net->mac, mac, 6);
	net->locked = tap->locked;
	net->local = tap->local;
	net->lease = tap->lease;
	/* The server's own MAC: locally administered, and not the guest's. */
	memcpy(net->lease.server_mac, (const uint8_t[6]){ 0xfe, 0xe1, 0xba, 0xd0, 0x00, 0x01 }, 6);
	if (virtio_pci_add(vm, &net->dev) < 0) {
		log_warnx("interface %s: cannot add its virtio-net device", net->ifname);
		return -1;
	}
	log_debug("%s: %s, lladdr %02x:%02x:%02x:%02x:%02x:%02x", name, net->ifname, mac[0], mac[1], mac[2], mac[3],
		  mac[4], mac[5]);
	return 0;
}

struct virtio_device *
virtio_net_on_socket(struct vm *vm, int fd, uint64_t features)
{
	struct virtio_net *net;
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return NULL;
	features &= VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS | VIRTIO_NET_F_MRG_RXBUF | VIRTIO_NET_F_CSUM |
		    VIRTIO_NET_F_HOST_TSO4 | VIRTIO_NET_F_HOST_TSO6 | VIRTIO_NET_F_HOST_ECN |
		    VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4 | VIRTIO_NET_F_GUEST_TSO6 |
		    VIRTIO_NET_F_GUEST_ECN;
	if ((net = net_create(vm, "virtio-net-socket", fd, features)) == NULL)
		return NULL;
	net->on_socket = true;
	snprintf(net->ifname, sizeof(net->ifname), "socket");
	return &net->dev;
}

uint64_t
virtio_net_rx_dropped(const struct virtio_device *dev)
{
	return ((const struct virtio_net *)dev)->rx_dropped;
}

void
virtio_net_free(struct virtio_device *dev)
{
	struct virtio_net *net = (struct virtio_net *)dev;

	for (int i = 0; i < dev->nqueues; i++)
		close(dev->queues[i].kick_fd);
	pthread_mutex_destroy(&dev->lock);
	free(net->frame);
	free(net);
}
