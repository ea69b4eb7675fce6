/*
 * Rebuilding the refcounts of a qcow2 image whose dirty bit is set: a
 * writer with lazy refcounts updates L2 tables but not refcounts, and sets
 * the dirty bit until it closes the image.  Before we write to such an
 * image we count every reference again (header, L1 tables, L2 tables, data
 * and compressed clusters, the snapshot table and the snapshots' tables),
 * write a new refcount table and blocks holding those counts at the end of
 * the file, switch the header to them, and only then clear the dirty bit.
 * A crash in between leaves the dirty bit set and the work is redone.
 * The old refcount structures end up unreferenced (refcount 0).
 *
 * Everything here is read from an untrusted file: every offset is checked
 * against the file's size, and the memory used is bounded by it.
 */
#include "disk/qcow2_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPAIR_MAX_CLUSTERS	(1ULL << 27) /* 512 MiB of counters */
#define SNAPSHOT_ENTRY_FIXED	40
#define SNAPSHOT_TABLE_MAX	(64ULL << 20)

struct repair {
	struct qcow2 *q;
	uint32_t *count;   /* references per cluster of the file */
	uint64_t clusters; /* clusters the file covers */
	uint8_t *buf;	   /* one L2 table */
	const char *name;
	char *err;
};

#define REPAIR_FAIL(r, ...)                                                   \
	do {                                                                  \
		disk_errorf_named((r)->err, (r)->name, __VA_ARGS__);          \
		return -1;                                                    \
	} while (0)

static int
count_range(struct repair *r, uint64_t offset, uint64_t len, const char *what)
{
	uint64_t first = offset >> r->q->cluster_bits;
	uint64_t last = (offset + len - 1) >> r->q->cluster_bits;

	if (len == 0)
		return 0;
	if (offset + len < offset || last >= r->clusters)
		REPAIR_FAIL(r, "%s at %llu lies beyond the end of the file "
		    "(corrupt image)", what, (unsigned long long)offset);
	for (uint64_t c = first; c <= last; c++) {
		if (r->count[c] == UINT32_MAX)
			REPAIR_FAIL(r, "cluster at %llu has too many references "
			    "(corrupt image)", (unsigned long long)c <<
			    r->q->cluster_bits);
		r->count[c]++;
	}
	return 0;
}

static int
count_entry(struct repair *r, uint64_t entry)
{
	struct qcow2 *q = r->q;
	uint64_t host = entry & QCOW2_OFFSET_MASK;

	if (entry & QCOW2_OFLAG_COMPRESSED) {
		uint64_t coffset = entry & q->coffset_mask;
		uint64_t sectors = ((entry >> q->csize_shift) & q->csize_mask) + 1;
		uint64_t start = coffset & ~511ULL;

		return count_range(r, start, sectors * 512, "compressed data");
	}
	if (host == 0)
		return 0;
	if (host & (q->cluster_size - 1))
		REPAIR_FAIL(r, "L2 entry 0x%llx: data offset is not cluster "
		    "aligned (corrupt image)", (unsigned long long)entry);
	return count_range(r, host, q->cluster_size, "data cluster");
}

static int
count_l2(struct repair *r, uint64_t l2_offset)
{
	struct qcow2 *q = r->q;
	size_t got;

	if (l2_offset & (q->cluster_size - 1))
		REPAIR_FAIL(r, "L2 table offset %llu is not cluster aligned "
		    "(corrupt image)", (unsigned long long)l2_offset);
	if (count_range(r, l2_offset, q->cluster_size, "L2 table") == -1)
		return -1;
	if (disk_pread_full(q->disk.fd, r->buf, q->cluster_size, l2_offset,
	    &got) == -1 || got != q->cluster_size)
		REPAIR_FAIL(r, "reading the L2 table at %llu: %s",
		    (unsigned long long)l2_offset, got != q->cluster_size ?
		    "truncated image" : strerror(errno));
	for (uint64_t i = 0; i < q->l2_entries; i++)
		if (count_entry(r, be64_get(r->buf + i * 8)) == -1)
			return -1;
	return 0;
}

/* An L1 table (host byte order) and everything it reaches. */
static int
count_l1(struct repair *r, const uint64_t *l1, uint64_t entries,
    uint64_t l1_offset)
{
	if (count_range(r, l1_offset, entries * 8, "L1 table") == -1)
		return -1;
	for (uint64_t i = 0; i < entries; i++) {
		uint64_t l2_offset = l1[i] & QCOW2_OFFSET_MASK;

		if (l2_offset != 0 && count_l2(r, l2_offset) == -1)
			return -1;
	}
	return 0;
}

static int
count_snapshot_l1(struct repair *r, uint64_t l1_offset, uint32_t l1_size)
{
	uint64_t *l1;
	uint8_t *raw;
	size_t got;
	int rc = -1;

	if (l1_size > QCOW2_MAX_L1_ENTRIES)
		REPAIR_FAIL(r, "snapshot L1 table of %u entries is too large",
		    l1_size);
	if (l1_size == 0)
		return 0;
	raw = malloc((size_t)l1_size * 8);
	l1 = calloc(l1_size, sizeof(*l1));
	if (raw == NULL || l1 == NULL) {
		disk_errorf_named(r->err, r->name, "%s", strerror(errno));
		goto out;
	}
	if (disk_pread_full(r->q->disk.fd, raw, (size_t)l1_size * 8, l1_offset,
	    &got) == -1 || got != (size_t)l1_size * 8) {
		disk_errorf_named(r->err, r->name, "snapshot L1 table at %llu "
		    "lies beyond the end of the file (corrupt image)",
		    (unsigned long long)l1_offset);
		goto out;
	}
	for (uint32_t i = 0; i < l1_size; i++)
		l1[i] = be64_get(raw + (size_t)i * 8);
	rc = count_l1(r, l1, l1_size, l1_offset);
out:
	free(raw);
	free(l1);
	return rc;
}

/* The snapshot table: each entry is 40 bytes, extra data, the id and the
 * name, padded to 8 bytes; each snapshot has its own L1 table. */
static int
count_snapshots(struct repair *r)
{
	const struct qcow2_header *h = &r->q->h;
	uint8_t fixed[SNAPSHOT_ENTRY_FIXED];
	uint64_t pos = h->snapshot_offset;
	size_t got;

	for (uint32_t i = 0; i < h->snapshot_count; i++) {
		uint64_t len;

		if (disk_pread_full(r->q->disk.fd, fixed, sizeof(fixed), pos,
		    &got) == -1 || got != sizeof(fixed))
			REPAIR_FAIL(r, "snapshot table at %llu lies beyond the "
			    "end of the file (corrupt image)",
			    (unsigned long long)h->snapshot_offset);
		len = SNAPSHOT_ENTRY_FIXED + (uint64_t)be32_get(fixed + 36) +
		    be16_get(fixed + 12) + be16_get(fixed + 14);
		len = (len + 7) & ~7ULL;
		if (count_snapshot_l1(r, be64_get(fixed),
		    be32_get(fixed + 8)) == -1)
			return -1;
		pos += len;
		if (pos - h->snapshot_offset > SNAPSHOT_TABLE_MAX)
			REPAIR_FAIL(r, "snapshot table is too large");
	}
	return count_range(r, h->snapshot_offset, pos - h->snapshot_offset,
	    "snapshot table");
}

/*
 * Where the new refcount table (table_clusters) and blocks go: from
 * cluster first on, covering every cluster up to their own end.
 */
static void
plan_refcounts(const struct qcow2 *q, uint64_t first, uint64_t *blocks,
    uint64_t *table_clusters)
{
	uint64_t rbe = q->refblock_entries, cs = q->cluster_size;

	*blocks = 0;
	*table_clusters = 0;
	for (;;) {
		uint64_t end = first + *table_clusters + *blocks;
		uint64_t b = (end + rbe - 1) / rbe;
		uint64_t t = (b * 8 + cs - 1) / cs;

		if (b == *blocks && t == *table_clusters)
			return;
		*blocks = b;
		*table_clusters = t;
	}
}

/* The new table and blocks in one buffer: the table, then the blocks. */
static int
fill_refcounts(struct repair *r, uint8_t *meta, uint64_t first,
    uint64_t blocks, uint64_t table_clusters)
{
	struct qcow2 *q = r->q;
	uint64_t cs = q->cluster_size, rbe = q->refblock_entries;
	uint64_t end = first + table_clusters + blocks;
	uint8_t *block_data = meta + table_clusters * cs;

	for (uint64_t b = 0; b < blocks; b++)
		be64_put(meta + b * 8, (first + table_clusters + b) << q->cluster_bits);
	for (uint64_t c = 0; c < end; c++) {
		uint64_t v = c < first ? r->count[c] : 1;

		if (v > q->refcount_max)
			REPAIR_FAIL(r, "cluster at %llu has %llu references, more "
			    "than %u-bit refcounts hold (corrupt image)",
			    (unsigned long long)c << q->cluster_bits,
			    (unsigned long long)v, 1u << q->h.refcount_order);
		if (v != 0)
			qcow2_refcount_set(q, block_data + (c / rbe) * cs,
			    c % rbe, v);
	}
	return 0;
}

static int
write_header_field(struct repair *r, const void *buf, size_t len,
    uint64_t offset)
{
	if (disk_pwrite_full(r->q->disk.fd, buf, len, offset) == -1 ||
	    fdatasync(r->q->disk.fd) == -1)
		REPAIR_FAIL(r, "updating the header: %s", strerror(errno));
	return 0;
}

/* Writes the new structures, then points the header at them, then clears
 * the dirty bit, each step durable before the next. */
static int
write_refcounts(struct repair *r)
{
	struct qcow2 *q = r->q;
	uint64_t cs = q->cluster_size, first = r->clusters, blocks, tc;
	uint8_t *meta, field[12];
	int rc = -1;

	plan_refcounts(q, first, &blocks, &tc);
	if (tc * cs > QCOW2_MAX_REFTABLE_BYTES)
		REPAIR_FAIL(r, "refcount table would be too large");
	if ((meta = calloc(tc + blocks, cs)) == NULL)
		REPAIR_FAIL(r, "%s", strerror(errno));
	if (fill_refcounts(r, meta, first, blocks, tc) == -1)
		goto out;
	if (disk_pwrite_full(q->disk.fd, meta, (tc + blocks) * cs,
	    first * cs) == -1 || fdatasync(q->disk.fd) == -1) {
		disk_errorf_named(r->err, r->name, "writing refcounts: %s",
		    strerror(errno));
		goto out;
	}
	be64_put(field, first * cs);
	be32_put(field + 8, (uint32_t)tc);
	if (write_header_field(r, field, 12, QH_REFTABLE_OFFSET) == -1)
		goto out;
	be64_put(field, q->h.incompatible & ~QCOW2_INCOMPAT_DIRTY);
	if (write_header_field(r, field, 8, QH_INCOMPATIBLE) == -1)
		goto out;
	q->h.reftable_offset = first * cs;
	q->h.reftable_clusters = (uint32_t)tc;
	q->h.incompatible &= ~QCOW2_INCOMPAT_DIRTY;
	q->h.file_size = (first + tc + blocks) * cs;
	rc = 0;
out:
	free(meta);
	return rc;
}

int
qcow2_repair_refcounts(struct qcow2 *q, const char *name, char *err)
{
	struct repair r = { .q = q, .name = name, .err = err };
	int rc = -1;

	r.clusters = (q->h.file_size + q->cluster_size - 1) >> q->cluster_bits;
	if (r.clusters > REPAIR_MAX_CLUSTERS) {
		disk_errorf_named(err, name, "dirty bit set and too large to "
		    "repair here: repair it with qemu-img check -r all");
		return -1;
	}
	r.count = calloc(r.clusters ? r.clusters : 1, sizeof(*r.count));
	r.buf = malloc(q->cluster_size);
	if (r.count == NULL || r.buf == NULL) {
		disk_errorf_named(err, name, "%s", strerror(errno));
		goto out;
	}
	if (count_range(&r, 0, q->cluster_size, "header") == -1 ||
	    count_l1(&r, q->l1, q->h.l1_size, q->h.l1_offset) == -1 ||
	    count_snapshots(&r) == -1 || write_refcounts(&r) == -1)
		goto out;
	rc = 0;
out:
	free(r.count);
	free(r.buf);
	return rc;
}
