/*
 * libFuzzer target for the split virtqueue walker: the input is guest
 * memory (rings, descriptors, indirect tables) plus a few bytes choosing the
 * queue size, EVENT_IDX and where the rings go.  The device side takes every
 * chain it can, uses it and decides on interrupts, as a device would.
 * Nothing may crash or reach outside the simulated guest RAM (ASan guards
 * its edges).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio.h"
#include "vm/vm.h"

#define RAM_SIZE (64 * 1024)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct virtq_chain chain;
	struct vm vm = { 0 };
	struct virtq q = { 0 };
	int rounds = 0;

	if (size < 8)
		return 0;
	vm.ram = calloc(1, RAM_SIZE);
	vm.ram_size = vm.low_ram_size = RAM_SIZE;
	memcpy(vm.ram, data + 8, size - 8 < RAM_SIZE ? size - 8 : RAM_SIZE);
	q.size = (uint16_t)(1u << (data[0] % 11)); /* 1 to 1024 */
	q.desc_gpa = (uint64_t)data[1] << 8;
	q.avail_gpa = (uint64_t)data[2] << 8 | (data[5] & 1) << 1;
	q.used_gpa = (uint64_t)data[3] << 8 | (data[5] & 2) << 1;
	if (virtq_start(&q, &vm, data[4] & 1) == 0) {
		int rc;

		while (rounds++ < 64 && (rc = virtq_pop(&q, &chain)) == 1) {
			/* Touch every buffer as a device would. */
			for (uint32_t i = 0; i < chain.nout + chain.nin; i++) {
				volatile uint8_t *p = chain.iov[i].iov_base;
				p[0] = p[chain.iov[i].iov_len - 1];
			}
			if (data[6] & 1)
				virtq_push(&q, chain.head, (uint32_t)chain.in_len);
			else
				virtq_fill(&q, chain.head, 0);
			virtq_should_interrupt(&q);
		}
		virtq_publish(&q);
		virtq_arm_notification(&q);
		virtq_unpop(&q, data[7]);
		virtq_pop(&q, &chain);
	}
	free(vm.ram);
	return 0;
}
