/*
 * Split virtqueues (virtio 1.x, 2.7): the device's walk of descriptor
 * chains, direct and indirect, and the used ring with EVENT_IDX.
 *
 * Everything here reads memory the guest can change at any moment, so each
 * descriptor is copied once and then checked; a chain that loops, runs past
 * the queue size, points outside guest RAM or puts a readable buffer after a
 * writable one makes virtq_pop fail, and the caller breaks the device.
 * The host is x86: guest little-endian fields are read as they are.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "devices/virtio.h"
#include "vm/vm.h"

#define AVAIL_FLAGS 0
#define AVAIL_IDX   1
#define AVAIL_RING  2 /* in uint16_t units */

static size_t
avail_bytes(uint16_t size)
{
	return 6 + 2 * (size_t)size;
}

static size_t
used_bytes(uint16_t size)
{
	return 6 + 8 * (size_t)size;
}

static int
virtq_fail(struct virtq *q, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->error, sizeof(q->error), fmt, ap);
	va_end(ap);
	return -1;
}

int
virtq_start(struct virtq *q, const struct vm *vm, bool event_idx)
{
	q->running = false;
	if (q->size == 0 || q->size > VIRTQ_MAX_SIZE || (q->size & (q->size - 1)) != 0)
		return virtq_fail(q, "queue size %u is not a power of two up to %u", q->size, VIRTQ_MAX_SIZE);
	if (q->desc_gpa % 16 || q->avail_gpa % 2 || q->used_gpa % 4)
		return virtq_fail(q, "misaligned rings");
	q->desc = guest_ptr(vm, q->desc_gpa, 16 * (uint64_t)q->size);
	q->avail = guest_ptr(vm, q->avail_gpa, avail_bytes(q->size));
	q->used = guest_ptr(vm, q->used_gpa, used_bytes(q->size));
	if (q->desc == NULL || q->avail == NULL || q->used == NULL)
		return virtq_fail(q, "rings outside guest RAM (desc %#llx avail %#llx used %#llx)",
				  (unsigned long long)q->desc_gpa, (unsigned long long)q->avail_gpa,
				  (unsigned long long)q->used_gpa);
	q->vm = vm;
	q->event_idx = event_idx;
	q->last_avail = 0;
	q->avail_seen = 0;
	q->used_idx = 0;
	q->signalled_used = 0;
	q->signalled_valid = false;
	q->error[0] = '\0';
	q->running = true;
	return 0;
}

void
virtq_stop(struct virtq *q)
{
	q->running = false;
	q->desc = NULL;
	q->avail = NULL;
	q->used = NULL;
}

static uint16_t
avail_idx(const struct virtq *q)
{
	return __atomic_load_n(&q->avail[AVAIL_IDX], __ATOMIC_ACQUIRE);
}

bool
virtq_has_work(const struct virtq *q)
{
	return q->running && avail_idx(q) != q->last_avail;
}

/* Adds one buffer to the chain after checking it against guest RAM and the chain's rules. */
static int
chain_add(struct virtq *q, struct virtq_chain *chain, const struct virtq_desc *d)
{
	uint32_t n = chain->nout + chain->nin;
	void *host;

	if (d->len == 0)
		return 0; /* nothing to read or write */
	if (n == VIRTQ_CHAIN_MAX)
		return virtq_fail(q, "chain at %u has more than %d buffers", chain->head, VIRTQ_CHAIN_MAX);
	host = guest_ptr(q->vm, d->addr, d->len);
	if (host == NULL)
		return virtq_fail(q, "buffer %#llx+%u outside guest RAM", (unsigned long long)d->addr, d->len);
	if (d->flags & VIRTQ_DESC_F_WRITE) {
		chain->nin++;
		chain->in_len += d->len;
	} else {
		if (chain->nin)
			return virtq_fail(q, "chain at %u has a readable buffer after a writable one", chain->head);
		chain->nout++;
		chain->out_len += d->len;
	}
	chain->iov[n] = (struct iovec){ .iov_base = host, .iov_len = d->len };
	return 0;
}

/* Walks an indirect table: its own descriptors, chained by index within the table. */
static int
chain_add_indirect(struct virtq *q, struct virtq_chain *chain, const struct virtq_desc *ind)
{
	const uint8_t *table;
	uint32_t count, i = 0, seen = 0;
	struct virtq_desc d;

	if (ind->len == 0 || ind->len % 16)
		return virtq_fail(q, "indirect table of %u bytes", ind->len);
	count = ind->len / 16;
	if (count > VIRTQ_CHAIN_MAX)
		return virtq_fail(q, "indirect table of %u descriptors", count);
	table = guest_ptr(q->vm, ind->addr, ind->len);
	if (table == NULL)
		return virtq_fail(q, "indirect table %#llx+%u outside guest RAM", (unsigned long long)ind->addr,
				  ind->len);
	for (;;) {
		if (seen++ == count)
			return virtq_fail(q, "indirect chain at %u loops", chain->head);
		memcpy(&d, table + 16 * (size_t)i, sizeof(d));
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return virtq_fail(q, "nested indirect table in chain at %u", chain->head);
		if (chain_add(q, chain, &d) < 0)
			return -1;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		i = d.next;
		if (i >= count)
			return virtq_fail(q, "indirect descriptor %u beyond its table of %u", i, count);
	}
}

int
virtq_pop(struct virtq *q, struct virtq_chain *chain)
{
	uint16_t idx, head, i;
	struct virtq_desc d;
	uint32_t seen = 0;

	if (!q->running)
		return 0;
	idx = avail_idx(q);
	q->avail_seen = idx;
	if (idx == q->last_avail)
		return 0;
	if ((uint16_t)(idx - q->last_avail) > q->size)
		return virtq_fail(q, "available index %u is %u ahead of %u, more than the queue size %u", idx,
				  (uint16_t)(idx - q->last_avail), q->last_avail, q->size);
	/* Read the ring entry only after seeing the index that covers it. */
	head = __atomic_load_n(&q->avail[AVAIL_RING + q->last_avail % q->size], __ATOMIC_RELAXED);
	if (head >= q->size)
		return virtq_fail(q, "head %u beyond the queue size %u", head, q->size);
	chain->head = head;
	chain->nout = chain->nin = 0;
	chain->out_len = chain->in_len = 0;
	for (i = head;;) {
		if (seen++ == q->size)
			return virtq_fail(q, "chain at %u loops or is longer than the queue", head);
		memcpy(&d, &q->desc[i], sizeof(d));
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return virtq_fail(q, "indirect descriptor %u also has NEXT", i);
			if (chain_add_indirect(q, chain, &d) < 0)
				return -1;
			break;
		}
		if (chain_add(q, chain, &d) < 0)
			return -1;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		i = d.next;
		if (i >= q->size)
			return virtq_fail(q, "descriptor %u beyond the queue size %u", i, q->size);
	}
	q->last_avail++;
	return 1;
}

void
virtq_unpop(struct virtq *q, uint16_t n)
{
	q->last_avail = (uint16_t)(q->last_avail - n);
}

void
virtq_fill(struct virtq *q, uint16_t head, uint32_t len)
{
	uint8_t *elem = q->used + 4 + 8 * (size_t)(q->used_idx % q->size);
	uint32_t id = head;

	memcpy(elem, &id, 4);
	memcpy(elem + 4, &len, 4);
	q->used_idx++;
}

void
virtq_publish(struct virtq *q)
{
	/* The elements must be visible before the index that covers them. */
	__atomic_store_n((uint16_t *)(q->used + 2), q->used_idx, __ATOMIC_RELEASE);
}

void
virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	virtq_fill(q, head, len);
	virtq_publish(q);
}

/* Whether new_idx passed event since old (virtio 1.x, 2.7.7.2): the driver's wish, in 16-bit arithmetic. */
static bool
event_passed(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

bool
virtq_should_interrupt(struct virtq *q)
{
	uint16_t old = q->signalled_used, event;
	bool valid = q->signalled_valid;

	if (!q->running)
		return false;
	/* Our used index store must be ordered before reading the driver's wish. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	q->signalled_used = q->used_idx;
	q->signalled_valid = true;
	if (!q->event_idx)
		return !(__atomic_load_n(&q->avail[AVAIL_FLAGS], __ATOMIC_RELAXED) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	if (valid && old == q->used_idx)
		return false;
	event = __atomic_load_n(&q->avail[AVAIL_RING + q->size], __ATOMIC_RELAXED);
	return !valid || event_passed(event, q->used_idx, old);
}

bool
virtq_arm_notification(struct virtq *q)
{
	if (!q->running)
		return false;
	/*
	 * The driver notifies when its index moves past avail_event (2.7.10):
	 * what we saw, not last_avail, which lags it after virtq_unpop and
	 * which the driver has already passed.
	 */
	if (q->event_idx)
		__atomic_store_n((uint16_t *)(q->used + 4 + 8 * (size_t)q->size), q->avail_seen,
				 __ATOMIC_RELAXED);
	/* Publish the wish before looking at the index again. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return avail_idx(q) != q->avail_seen;
}

size_t
iov_copy_from(const struct iovec *iov, uint32_t n, size_t skip, void *dst, size_t len)
{
	size_t done = 0;

	for (uint32_t i = 0; i < n && done < len; i++) {
		size_t take;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		take = iov[i].iov_len - skip;
		if (take > len - done)
			take = len - done;
		memcpy((uint8_t *)dst + done, (uint8_t *)iov[i].iov_base + skip, take);
		done += take;
		skip = 0;
	}
	return done;
}

size_t
iov_copy_to(const struct iovec *iov, uint32_t n, size_t skip, const void *src, size_t len)
{
	size_t done = 0;

	for (uint32_t i = 0; i < n && done < len; i++) {
		size_t take;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		take = iov[i].iov_len - skip;
		if (take > len - done)
			take = len - done;
		memcpy((uint8_t *)iov[i].iov_base + skip, (const uint8_t *)src + done, take);
		done += take;
		skip = 0;
	}
	return done;
}

uint32_t
iov_slice(const struct iovec *iov, uint32_t n, size_t skip, size_t len, struct iovec *out, uint32_t max)
{
	uint32_t count = 0;

	for (uint32_t i = 0; i < n && len > 0 && count < max; i++) {
		size_t take;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		take = iov[i].iov_len - skip;
		if (take > len)
			take = len;
		out[count++] = (struct iovec){ (uint8_t *)iov[i].iov_base + skip, take };
		len -= take;
		skip = 0;
	}
	return count;
}
