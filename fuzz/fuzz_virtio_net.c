/*
 * libFuzzer target for the virtio-net transmit header check: the input is
 * a frame as the guest hands it over (the 12-byte virtio-net header, then
 * the Ethernet frame), cut into buffers, with the negotiated features from
 * its first bytes.  Nothing may crash; a frame shorter than the header is
 * always refused.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio.h"
#include "devices/virtio_net.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iovec iov[4];
	uint64_t features = 0;
	size_t len, cut1, cut2;
	char why[128];
	uint8_t *copy;
	int rc;

	if (size < 4)
		return 0;
	memcpy(&features, data, 4);
	copy = malloc(size - 4 ? size - 4 : 1);
	memcpy(copy, data + 4, size - 4);
	len = size - 4;
	cut1 = len ? data[0] % (len + 1) : 0;
	cut2 = cut1 + (len - cut1 ? data[1] % (len - cut1 + 1) : 0);
	iov[0] = (struct iovec){ copy, cut1 };
	iov[1] = (struct iovec){ copy + cut1, cut2 - cut1 };
	iov[2] = (struct iovec){ copy + cut2, len - cut2 };
	rc = virtio_net_check_tx(iov, 3, len, features, why, sizeof(why));
	if (len < VIRTIO_NET_HDR_BYTES && rc == 0)
		abort();
	free(copy);
	return 0;
}
