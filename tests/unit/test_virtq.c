/*
 * The split virtqueue walker against a simulated guest memory (a struct vm
 * whose RAM is a plain buffer): well-formed chains, direct and indirect, and
 * every malformed chain the device must refuse without touching memory
 * outside guest RAM.  AddressSanitizer watches the buffer's edges.
 */
#include <stdlib.h>
#include <string.h>

#include "devices/virtio.h"
#include "unit/check.h"
#include "vm/vm.h"

#define RAM_SIZE   (1 << 20)
#define QSIZE	   8
#define DESC_GPA   0x1000
#define AVAIL_GPA  0x2000
#define USED_GPA   0x3000
#define TABLE_GPA  0x4000
#define DATA_GPA   0x10000

static struct vm vm;
static struct virtq q;
static struct virtq_chain chain;

static void
setup(bool event_idx)
{
	free(vm.ram);
	memset(&vm, 0, sizeof(vm));
	vm.ram = calloc(1, RAM_SIZE);
	vm.ram_size = vm.low_ram_size = RAM_SIZE;
	memset(&q, 0, sizeof(q));
	q.size = QSIZE;
	q.desc_gpa = DESC_GPA;
	q.avail_gpa = AVAIL_GPA;
	q.used_gpa = USED_GPA;
	q.enabled = true;
	CHECK(virtq_start(&q, &vm, event_idx) == 0);
}

static void
put_desc(uint64_t table_gpa, int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct virtq_desc d = { addr, len, flags, next };

	memcpy(vm.ram + table_gpa + 16 * (uint64_t)i, &d, sizeof(d));
}

static uint16_t
get16(uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, vm.ram + gpa, 2);
	return v;
}

static void
put16(uint64_t gpa, uint16_t v)
{
	memcpy(vm.ram + gpa, &v, 2);
}

/* Makes head the next available chain. */
static void
offer(uint16_t head)
{
	uint16_t idx = get16(AVAIL_GPA + 2);

	put16(AVAIL_GPA + 4 + 2 * (idx % QSIZE), head);
	put16(AVAIL_GPA + 2, (uint16_t)(idx + 1));
}

static void
virtq_takes_a_well_formed_chain(void)
{
	setup(false);
	CHECK(virtq_pop(&q, &chain) == 0); /* empty */
	put_desc(DESC_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 3);
	put_desc(DESC_GPA, 3, DATA_GPA + 0x100, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 5);
	put_desc(DESC_GPA, 5, DATA_GPA + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	CHECK(virtq_pop(&q, &chain) == 1);
	CHECK(chain.head == 0 && chain.nout == 1 && chain.nin == 2);
	CHECK(chain.out_len == 16 && chain.in_len == 513);
	CHECK(chain.iov[0].iov_base == vm.ram + DATA_GPA && chain.iov[0].iov_len == 16);
	CHECK(chain.iov[2].iov_base == vm.ram + DATA_GPA + 0x400);
	CHECK(virtq_pop(&q, &chain) == 0);

	/* Giving it back makes it available again. */
	virtq_unpop(&q, 1);
	CHECK(virtq_pop(&q, &chain) == 1 && chain.head == 0);
}

static void
virtq_takes_an_indirect_chain(void)
{
	setup(false);
	put_desc(TABLE_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	put_desc(TABLE_GPA, 2, DATA_GPA + 0x100, 4096, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	put_desc(TABLE_GPA, 1, DATA_GPA + 0x2000, 1, VIRTQ_DESC_F_WRITE, 0);
	put_desc(DESC_GPA, 4, TABLE_GPA, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(4);
	CHECK(virtq_pop(&q, &chain) == 1);
	CHECK(chain.head == 4 && chain.nout == 1 && chain.nin == 2 && chain.in_len == 4097);
}

/* Each case: one malformed chain, which virtq_pop refuses. */
static void
refuse(const char *what)
{
	int rc = virtq_pop(&q, &chain);

	CHECK(rc == -1);
	if (rc != -1)
		printf("  accepted: %s\n", what);
	else
		CHECK(q.error[0] != '\0');
}

static void
virtq_refuses_loops(void)
{
	setup(false);
	put_desc(DESC_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC_GPA, 1, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 0);
	offer(0);
	refuse("a loop of two");

	setup(false);
	put_desc(DESC_GPA, 2, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	offer(2);
	refuse("a descriptor pointing at itself");

	setup(false);
	put_desc(TABLE_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(TABLE_GPA, 1, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 0);
	put_desc(DESC_GPA, 0, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	refuse("a loop inside an indirect table");
}

static void
virtq_refuses_bad_indices(void)
{
	setup(false);
	put_desc(DESC_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, QSIZE);
	offer(0);
	refuse("next beyond the queue size");

	setup(false);
	offer(QSIZE + 3);
	refuse("a head beyond the queue size");

	setup(false);
	put16(AVAIL_GPA + 2, QSIZE + 1);
	refuse("an available index more than the queue size ahead");

	setup(false);
	put_desc(TABLE_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 7);
	put_desc(DESC_GPA, 0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	refuse("next beyond the indirect table");
}

static void
virtq_refuses_memory_outside_ram(void)
{
	setup(false);
	put_desc(DESC_GPA, 0, RAM_SIZE - 8, 16, 0, 0);
	offer(0);
	refuse("a buffer running past the end of RAM");

	setup(false);
	put_desc(DESC_GPA, 0, 0xfffffffffffffff0ULL, 0x20, 0, 0);
	offer(0);
	refuse("a buffer whose end wraps around");

	setup(false);
	put_desc(DESC_GPA, 0, (uint64_t)MEM_HOLE_START + 0x1000, 16, 0, 0);
	offer(0);
	refuse("a buffer in the MMIO hole");

	setup(false);
	put_desc(DESC_GPA, 0, RAM_SIZE - 16, 64, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	refuse("an indirect table past the end of RAM");

	/* Rings outside RAM are refused when the queue starts. */
	setup(false);
	virtq_stop(&q);
	q.used_gpa = RAM_SIZE - 8;
	CHECK(virtq_start(&q, &vm, false) < 0 && !q.running);
	q.used_gpa = USED_GPA + 2;
	CHECK(virtq_start(&q, &vm, false) < 0); /* misaligned */
	q.used_gpa = USED_GPA;
	q.size = 6;
	CHECK(virtq_start(&q, &vm, false) < 0); /* not a power of two */
	q.size = QSIZE;
	CHECK(virtq_start(&q, &vm, false) == 0);
}

static void
virtq_refuses_malformed_indirect(void)
{
	setup(false);
	put_desc(DESC_GPA, 0, TABLE_GPA, 24, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	refuse("an indirect table that is not a multiple of 16 bytes");

	setup(false);
	put_desc(DESC_GPA, 0, TABLE_GPA, 0, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	refuse("an empty indirect table");

	setup(false);
	put_desc(TABLE_GPA + 0x100, 0, DATA_GPA, 16, 0, 0);
	put_desc(TABLE_GPA, 0, TABLE_GPA + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(DESC_GPA, 0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	refuse("an indirect table inside an indirect table");

	setup(false);
	put_desc(DESC_GPA, 0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	offer(0);
	refuse("INDIRECT together with NEXT");

	setup(false);
	put_desc(DESC_GPA, 0, TABLE_GPA, 16 * (VIRTQ_CHAIN_MAX + 1), VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	refuse("an indirect table longer than a chain may be");
}

static void
virtq_refuses_readable_after_writable(void)
{
	setup(false);
	put_desc(DESC_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	put_desc(DESC_GPA, 1, DATA_GPA, 16, 0, 0);
	offer(0);
	refuse("a readable buffer after a writable one");
}

static uint32_t
used_field(int entry, int field)
{
	uint32_t v;

	memcpy(&v, vm.ram + USED_GPA + 4 + 8 * entry + 4 * field, 4);
	return v;
}

static void
virtq_used_ring_and_interrupts(void)
{
	setup(false);
	virtq_push(&q, 5, 77);
	CHECK(get16(USED_GPA + 2) == 1 && used_field(0, 0) == 5 && used_field(0, 1) == 77);
	CHECK(virtq_should_interrupt(&q));
	put16(AVAIL_GPA, VIRTQ_AVAIL_F_NO_INTERRUPT);
	virtq_push(&q, 6, 1);
	CHECK(!virtq_should_interrupt(&q));

	/* fill without publish stays invisible. */
	virtq_fill(&q, 1, 10);
	virtq_fill(&q, 2, 20);
	CHECK(get16(USED_GPA + 2) == 2);
	virtq_publish(&q);
	CHECK(get16(USED_GPA + 2) == 4 && used_field(3, 0) == 2);
}

static void
virtq_event_idx(void)
{
	setup(true);
	/* used_event = 2: interrupt once the device has used entry 2 (idx passes 3). */
	put16(AVAIL_GPA + 4 + 2 * QSIZE, 2);
	virtq_push(&q, 0, 0);
	CHECK(virtq_should_interrupt(&q)); /* the first decision always interrupts */
	virtq_push(&q, 0, 0);
	CHECK(!virtq_should_interrupt(&q)); /* idx 2: not past used_event yet */
	virtq_push(&q, 0, 0);
	CHECK(virtq_should_interrupt(&q)); /* idx 3 */
	CHECK(!virtq_should_interrupt(&q)); /* nothing new */

	/* Arming writes avail_event and reports buffers that came meanwhile. */
	CHECK(!virtq_arm_notification(&q));
	put_desc(DESC_GPA, 0, DATA_GPA, 16, 0, 0);
	offer(0);
	CHECK(virtq_arm_notification(&q));
	CHECK(virtq_pop(&q, &chain) == 1);
	CHECK(!virtq_arm_notification(&q));
	CHECK(get16(USED_GPA + 4 + 8 * QSIZE) == 1);
}

static void
iov_helpers(void)
{
	uint8_t a[4] = { 1, 2, 3, 4 }, b[3] = { 5, 6, 7 }, out[7];
	struct iovec iov[2] = { { a, 4 }, { b, 3 } }, slice[2];

	CHECK(iov_copy_from(iov, 2, 2, out, 7) == 5 && out[0] == 3 && out[4] == 7);
	CHECK(iov_slice(iov, 2, 3, 2, slice, 2) == 2);
	CHECK(slice[0].iov_base == a + 3 && slice[0].iov_len == 1 && slice[1].iov_base == b &&
	      slice[1].iov_len == 1);
	CHECK(iov_copy_to(iov, 2, 6, "xyz", 3) == 1 && b[2] == 'x');
}

int
main(void)
{
	RUN_TEST(virtq_takes_a_well_formed_chain);
	RUN_TEST(virtq_takes_an_indirect_chain);
	RUN_TEST(virtq_refuses_loops);
	RUN_TEST(virtq_refuses_bad_indices);
	RUN_TEST(virtq_refuses_memory_outside_ram);
	RUN_TEST(virtq_refuses_malformed_indirect);
	RUN_TEST(virtq_refuses_readable_after_writable);
	RUN_TEST(virtq_used_ring_and_interrupts);
	RUN_TEST(virtq_event_idx);
	RUN_TEST(iov_helpers);
	free(vm.ram);
	TEST_EXIT();
}
