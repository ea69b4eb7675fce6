/*
 * Ordered write-back of qcow2 metadata: metadata never points at data that
 * has not been written.
 *
 * A write that allocates clusters writes the data at once and raises the
 * refcounts of the new clusters at once (write-through: a raised refcount
 * with nothing pointing at it is only a leak).  The L2 entries that point
 * at the new clusters change in the L2 cache and stay there, marked dirty,
 * until qcow2_sync() (disk_flush, close, or a dirty table leaving the
 * cache), which writes them in this order:
 *
 *   1. L2 tables that no L1 entry on disk points at yet (new tables)
 *   2. fdatasync: data, refcounts and new tables are durable
 *   3. the other dirty L2 tables and the dirty L1 entries
 *   4. fdatasync: the flush the guest asked for
 *   5. refcount decrements of the clusters the new entries replaced
 *
 * A power cut or a kill at any point leaves at worst leaked clusters.  The
 * decrements of step 5 become durable with the next flush; losing them is a
 * leak too, while writing them earlier could free a cluster that a table on
 * disk still points at.
 */
#include "disk/qcow2_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define PENDING_BACKLOG 4096 /* deferred frees that force a write-back */

static struct table_slot *
slot_of(struct qcow2 *q, const uint8_t *l2)
{
	struct table_cache *c = &q->l2_cache;

	if (c->slot[c->last].data == l2)
		return &c->slot[c->last];
	for (unsigned i = 0; i < c->count; i++)
		if (c->slot[i].data == l2)
			return &c->slot[i];
	return NULL;
}

/* Entries [first, first + count) of the cached table l2 changed. */
void
qcow2_l2_dirty(struct qcow2 *q, const uint8_t *l2, uint64_t first,
    uint64_t count)
{
	struct table_slot *slot = slot_of(q, l2);
	uint64_t lo = first * 8, hi = (first + count) * 8;

	if (slot == NULL)
		return;
	if (slot->dirty_hi <= slot->dirty_lo) {
		slot->dirty_lo = lo;
		slot->dirty_hi = hi;
		return;
	}
	if (lo < slot->dirty_lo)
		slot->dirty_lo = lo;
	if (hi > slot->dirty_hi)
		slot->dirty_hi = hi;
}

/* l2 is a new, zeroed table: all of it is written at the next sync. */
void
qcow2_l2_fresh(struct qcow2 *q, const uint8_t *l2)
{
	struct table_slot *slot = slot_of(q, l2);

	if (slot == NULL)
		return;
	slot->fresh = 1;
	slot->dirty_lo = 0;
	slot->dirty_hi = q->cluster_size;
}

void
qcow2_l1_dirty(struct qcow2 *q, uint64_t index)
{
	if (q->l1_dirty_hi <= q->l1_dirty_lo) {
		q->l1_dirty_lo = index;
		q->l1_dirty_hi = index + 1;
		return;
	}
	if (index < q->l1_dirty_lo)
		q->l1_dirty_lo = index;
	if (index + 1 > q->l1_dirty_hi)
		q->l1_dirty_hi = index + 1;
}

/*
 * What entry pointed at is freed after the next sync.  Without memory to
 * remember it, the cluster stays counted: a leak, never a corruption.
 */
void
qcow2_defer_free(struct qcow2 *q, uint64_t entry, int punch)
{
	struct pending_free *grown;
	size_t cap;

	if ((entry & ~(QCOW2_OFLAG_COPIED | QCOW2_OFLAG_ZERO)) == 0)
		return; /* unallocated or zero: nothing to free */
	if (q->pending_count == q->pending_cap) {
		cap = q->pending_cap ? q->pending_cap * 2 : 64;
		grown = reallocarray(q->pending, cap, sizeof(*grown));
		if (grown == NULL)
			return;
		q->pending = grown;
		q->pending_cap = cap;
	}
	q->pending[q->pending_count].entry = entry;
	q->pending[q->pending_count].punch = punch;
	q->pending_count++;
}

static int
datasync(struct qcow2 *q)
{
	if (fdatasync(q->disk.fd) == -1) {
		disk_seterror(&q->disk, errno, "flush");
		return -1;
	}
	return 0;
}

/* Writes the dirty L2 tables that are fresh (or not fresh). */
static int
write_tables(struct qcow2 *q, int fresh)
{
	struct table_cache *c = &q->l2_cache;

	for (unsigned i = 0; i < c->count; i++) {
		struct table_slot *s = &c->slot[i];

		if (s->offset == 0 || s->dirty_hi <= s->dirty_lo ||
		    s->fresh != fresh)
			continue;
		if (qcow2_write_meta(q, s->data + s->dirty_lo,
		    s->dirty_hi - s->dirty_lo, s->offset + s->dirty_lo,
		    "L2 table") == -1)
			return -1;
		s->dirty_lo = s->dirty_hi = 0;
		s->fresh = 0;
	}
	return 0;
}

static int
write_l1(struct qcow2 *q)
{
	uint64_t lo = q->l1_dirty_lo, n = q->l1_dirty_hi - lo;
	uint8_t *buf;
	int rc;

	if (q->l1_dirty_hi <= lo)
		return 0;
	if ((buf = malloc(n * 8)) == NULL) {
		disk_seterror(&q->disk, errno, "writing the L1 table");
		return -1;
	}
	for (uint64_t i = 0; i < n; i++)
		be64_put(buf + i * 8, q->l1[lo + i]);
	rc = qcow2_write_meta(q, buf, n * 8, q->h.l1_offset + lo * 8,
	    "L1 table");
	free(buf);
	if (rc == 0)
		q->l1_dirty_lo = q->l1_dirty_hi = 0;
	return rc;
}

static int
apply_frees(struct qcow2 *q)
{
	int rc = 0;

	for (size_t i = 0; i < q->pending_count; i++)
		if (qcow2_free_entry(q, q->pending[i].entry,
		    q->pending[i].punch) == -1)
			rc = -1;
	q->pending_count = 0;
	return rc;
}

/* Makes everything written so far durable, metadata in order (above). */
int
qcow2_sync(struct qcow2 *q)
{
	if (qcow2_extend_file(q) == -1 || write_tables(q, 1) == -1 ||
	    datasync(q) == -1 || write_tables(q, 0) == -1 ||
	    write_l1(q) == -1 || datasync(q) == -1)
		return -1;
	return apply_frees(q);
}

/* Bounds the memory of deferred frees between guest flushes. */
int
qcow2_sync_if_backlogged(struct qcow2 *q)
{
	if (q->pending_count < PENDING_BACKLOG)
		return 0;
	return qcow2_sync(q);
}
