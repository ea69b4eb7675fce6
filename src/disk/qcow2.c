/*
 * The qcow2 engine: reads v2 and v3 images (backing files, zero clusters,
 * zlib-compressed clusters) and writes them in place.
 *
 * Crash safety comes from the order of writes, not from a journal: a
 * cluster's data and its raised refcount are written before anything points
 * at it, and a refcount is lowered only after the last pointer to the
 * cluster is gone.  L2 and L1 entries are written back in that order, with
 * fdatasync between, by qcow2_sync() (qcow2_writeback.c), so a process
 * killed or a machine losing power at any point leaves at worst leaked
 * clusters (refcount 1, no reference), which `qemu-img check -r leaks`
 * reclaims.
 *
 * Internal snapshots share L2 tables and data clusters with the image
 * (refcount above 1, no COPIED flag): a write copies the shared L2 table,
 * then the shared cluster, and drops one reference from each.
 *
 * New clusters always come from the end of the file, never from clusters
 * freed earlier, so a new cluster reads as zeros until written: a partial
 * write to a cluster without older content needs no copy-on-write.
 */
#include "disk/qcow2_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#define ALLOC_EXTENT_BYTES (2ULL << 20) /* clusters reserved per refcount update */
#define WRITE_RUN_MAX	   512		/* clusters allocated by one step */

static inline uint64_t
min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static struct qcow2 *
to_qcow2(struct disk *disk)
{
	return (struct qcow2 *)disk;
}

/* ---- metadata cache ---------------------------------------------------- */

static int
cache_init(struct table_cache *c, unsigned count, uint64_t cluster_size)
{
	c->count = count;
	c->last = 0;
	c->clock = 0;
	if ((c->slot = calloc(count, sizeof(*c->slot))) == NULL)
		return -1;
	for (unsigned i = 0; i < count; i++)
		if ((c->slot[i].data = malloc(cluster_size)) == NULL)
			return -1;
	return 0;
}

static void
cache_free(struct table_cache *c)
{
	if (c->slot == NULL)
		return;
	for (unsigned i = 0; i < c->count; i++)
		free(c->slot[i].data);
	free(c->slot);
}

/*
 * Returns the cached table at host offset, reading it on a miss (or zero
 * filling it when the cluster is new).  The pointer is valid until the
 * next lookup in the same cache.  A miss in the L2 cache may sync.
 */
static uint8_t *
table_get(struct qcow2 *q, struct table_cache *c, uint64_t offset, int fresh,
    const char *what)
{
	struct table_slot *slot = &c->slot[c->last], *victim;
	size_t got;

	if (slot->offset == offset && offset != 0) {
		slot->last_use = ++c->clock;
		return slot->data;
	}
	if (offset == 0 || (offset & (q->cluster_size - 1)) != 0) {
		disk_seterror(&q->disk, 0, "%s offset %llu is not cluster "
		    "aligned (corrupt image)", what, (unsigned long long)offset);
		return NULL;
	}
	victim = &c->slot[0];
	for (unsigned i = 0; i < c->count; i++) {
		slot = &c->slot[i];
		if (slot->offset == offset) {
			c->last = i;
			slot->last_use = ++c->clock;
			return slot->data;
		}
		if (slot->last_use < victim->last_use)
			victim = slot;
	}
	/* A dirty L2 table leaves the cache only through an ordered sync. */
	if (victim->dirty_hi > victim->dirty_lo && qcow2_sync(q) == -1)
		return NULL;
	victim->offset = 0;
	victim->dirty_lo = victim->dirty_hi = 0;
	victim->fresh = 0;
	if (fresh) {
		memset(victim->data, 0, q->cluster_size);
	} else {
		if (disk_pread_full(q->disk.fd, victim->data, q->cluster_size,
		    offset, &got) == -1) {
			disk_seterror(&q->disk, errno, "reading %s at %llu",
			    what, (unsigned long long)offset);
			return NULL;
		}
		if (got != q->cluster_size) {
			disk_seterror(&q->disk, 0, "%s at %llu lies beyond the "
			    "end of the file (truncated image)", what,
			    (unsigned long long)offset);
			return NULL;
		}
	}
	victim->offset = offset;
	victim->last_use = ++c->clock;
	c->last = (unsigned)(victim - c->slot);
	return victim->data;
}

/* A cluster that becomes something else must not be served stale. */
static void
cache_forget(struct table_cache *c, uint64_t offset)
{
	for (unsigned i = 0; i < c->count; i++)
		if (c->slot[i].offset == offset)
			c->slot[i].offset = 0;
}

int
qcow2_write_meta(struct qcow2 *q, const void *buf, size_t len, uint64_t offset,
    const char *what)
{
	if (disk_pwrite_full(q->disk.fd, buf, len, offset) == -1) {
		disk_seterror(&q->disk, errno, "writing %s at %llu", what,
		    (unsigned long long)offset);
		return -1;
	}
	return 0;
}

/* ---- refcounts --------------------------------------------------------- */

static uint64_t
refcount_entry_get(const struct qcow2 *q, const uint8_t *block, uint64_t i)
{
	unsigned order = q->h.refcount_order;

	switch (order) {
	case 0: case 1: case 2: {
		unsigned bits = 1u << order;
		uint64_t bit = i * bits;
		return (block[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
	}
	case 3:
		return block[i];
	case 4:
		return be16_get(block + 2 * i);
	case 5:
		return be32_get(block + 4 * i);
	default:
		return be64_get(block + 8 * i);
	}
}

/* Sets entry i; returns the offset of the byte it changed in the block. */
size_t
qcow2_refcount_set(const struct qcow2 *q, uint8_t *block, uint64_t i,
    uint64_t value)
{
	unsigned order = q->h.refcount_order;

	switch (order) {
	case 0: case 1: case 2: {
		unsigned bits = 1u << order;
		uint64_t bit = i * bits;
		uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));
		block[bit / 8] = (uint8_t)((block[bit / 8] & ~mask) |
		    ((value << (bit % 8)) & mask));
		return bit / 8;
	}
	case 3:
		block[i] = (uint8_t)value;
		return i;
	case 4:
		be16_put(block + 2 * i, (uint16_t)value);
		return 2 * i;
	case 5:
		be32_put(block + 4 * i, (uint32_t)value);
		return 4 * i;
	default:
		be64_put(block + 8 * i, value);
		return 8 * i;
	}
}

static size_t
refcount_entry_bytes(const struct qcow2 *q)
{
	return q->h.refcount_order < 3 ? 1 : 1u << (q->h.refcount_order - 3);
}

static uint64_t
refblock_offset(const struct qcow2 *q, uint64_t region)
{
	if (region >= q->reftable_entries)
		return 0;
	return q->reftable[region] & QCOW2_REFTABLE_OFFSET_MASK;
}

static int
refcount_get(struct qcow2 *q, uint64_t host, uint64_t *value)
{
	uint64_t cluster = host >> q->cluster_bits;
	uint64_t region = cluster / q->refblock_entries;
	uint64_t block_offset = refblock_offset(q, region);
	uint8_t *block;

	*value = 0;
	if (block_offset == 0)
		return 0;
	block = table_get(q, &q->refblock_cache, block_offset, 0,
	    "refcount block");
	if (block == NULL)
		return -1;
	*value = refcount_entry_get(q, block, cluster % q->refblock_entries);
	return 0;
}

/*
 * Adds delta to the refcount of count clusters from host.  Their refcount
 * blocks must exist.  Each block changed is written once.
 */
static int
refcount_change(struct qcow2 *q, uint64_t host, uint64_t count, int delta)
{
	uint64_t cluster = host >> q->cluster_bits, end = cluster + count;

	while (cluster < end) {
		uint64_t region = cluster / q->refblock_entries;
		uint64_t first = cluster % q->refblock_entries;
		uint64_t n = min64(end - cluster, q->refblock_entries - first);
		uint64_t block_offset = refblock_offset(q, region);
		size_t lo = SIZE_MAX, hi = 0, at;
		uint8_t *block;

		if (block_offset == 0) {
			disk_seterror(&q->disk, 0, "cluster at %llu has no "
			    "refcount block (corrupt image)",
			    (unsigned long long)(cluster << q->cluster_bits));
			return -1;
		}
		block = table_get(q, &q->refblock_cache, block_offset, 0,
		    "refcount block");
		if (block == NULL)
			return -1;
		for (uint64_t i = first; i < first + n; i++) {
			uint64_t v = refcount_entry_get(q, block, i);

			if ((delta < 0 && v == 0) ||
			    (delta > 0 && v == q->refcount_max)) {
				disk_seterror(&q->disk, 0, "refcount of cluster "
				    "at %llu would %s (corrupt image)",
				    (unsigned long long)((region *
				    q->refblock_entries + i) << q->cluster_bits),
				    delta < 0 ? "drop below zero" : "overflow");
				if (hi > lo)
					qcow2_write_meta(q, block + lo, hi - lo,
					    block_offset + lo, "refcount block");
				return -1;
			}
			at = qcow2_refcount_set(q, block, i, v + (uint64_t)(int64_t)delta);
			if (at < lo)
				lo = at;
			if (at + refcount_entry_bytes(q) > hi)
				hi = at + refcount_entry_bytes(q);
		}
		if (qcow2_write_meta(q, block + lo, hi - lo, block_offset + lo,
		    "refcount block") == -1)
			return -1;
		cluster += n;
	}
	return 0;
}

static int
set_reftable_entry(struct qcow2 *q, uint64_t region, uint64_t offset)
{
	uint8_t be[8];

	be64_put(be, offset);
	if (qcow2_write_meta(q, be, 8, q->h.reftable_offset + region * 8,
	    "refcount table") == -1)
		return -1;
	q->reftable[region] = offset;
	return 0;
}

static void
note_used(struct qcow2 *q, uint64_t end)
{
	if (end > q->used_end)
		q->used_end = end;
}

/* Gives back the reserved clusters: they end up with refcount 0. */
static int
release_reserve(struct qcow2 *q)
{
	uint64_t count = (q->alloc_next - q->reserve_start) >> q->cluster_bits;
	int rc = 0;

	if (count > 0)
		rc = refcount_change(q, q->reserve_start, count, -1);
	q->reserve_start = q->alloc_next;
	return rc;
}

/*
 * A larger refcount table, needed for region.  It goes at the end of the
 * file together with new refcount blocks for the clusters it occupies; the
 * header switches to it only after both are written.
 */
static int
grow_reftable(struct qcow2 *q, uint64_t region)
{
	uint64_t cs = q->cluster_size, rbe = q->refblock_entries;
	uint64_t first = q->alloc_next >> q->cluster_bits;
	uint64_t entries = q->reftable_entries * 2, table_clusters, blocks, end;
	uint64_t old_offset = q->h.reftable_offset;
	uint64_t old_clusters = q->h.reftable_clusters, *table = NULL;
	uint8_t *meta = NULL, hdr[12];
	int rc = -1;

	if (release_reserve(q) == -1)
		return -1;
	first = q->alloc_next >> q->cluster_bits;
	if (entries < (region + 1) * 2)
		entries = (region + 1) * 2;
	for (;;) {
		table_clusters = (entries * 8 + cs - 1) / cs;
		entries = table_clusters * cs / 8;
		/* new blocks for regions of [first, end) without one */
		blocks = 0;
		for (;;) {
			uint64_t need = 0;
			end = first + table_clusters + blocks;
			for (uint64_t g = first / rbe; g <= (end - 1) / rbe; g++)
				if (refblock_offset(q, g) == 0)
					need++;
			if (need == blocks)
				break;
			blocks = need;
		}
		if ((end - 1) / rbe < entries &&
		    table_clusters * cs <= QCOW2_MAX_REFTABLE_BYTES)
			break;
		if (table_clusters * cs > QCOW2_MAX_REFTABLE_BYTES) {
			disk_seterror(&q->disk, EFBIG, "refcount table full");
			return -1;
		}
		entries *= 2;
	}
	if ((table = calloc(entries, sizeof(*table))) == NULL ||
	    (meta = calloc(table_clusters + blocks, cs)) == NULL) {
		disk_seterror(&q->disk, errno, "growing the refcount table");
		goto out;
	}
	memcpy(table, q->reftable, q->reftable_entries * sizeof(*table));
	/* Count the new clusters: in existing blocks first, then in the new
	 * blocks (laid out after the table), which also count themselves. */
	{
		uint64_t next_block = first + table_clusters;
		uint8_t *block_data = meta + table_clusters * cs;

		for (uint64_t g = first / rbe; g <= (end - 1) / rbe; g++) {
			if (refblock_offset(q, g) == 0) {
				table[g] = next_block << q->cluster_bits;
				next_block++;
			}
		}
		for (uint64_t c = first; c < end; c++) {
			uint64_t g = c / rbe;
			if (refblock_offset(q, g) != 0) {
				if (refcount_change(q, c << q->cluster_bits, 1,
				    1) == -1)
					goto out;
				continue;
			}
			uint64_t block_index = (table[g] >> q->cluster_bits) -
			    (first + table_clusters);
			qcow2_refcount_set(q, block_data + block_index * cs,
			    c % rbe, 1);
		}
	}
	for (uint64_t i = 0; i < entries; i++)
		be64_put(meta + i * 8, table[i]);
	if (qcow2_write_meta(q, meta, (table_clusters + blocks) * cs,
	    first << q->cluster_bits, "refcount table") == -1)
		goto out;
	for (uint64_t c = first; c < end; c++) {
		cache_forget(&q->refblock_cache, c << q->cluster_bits);
		cache_forget(&q->l2_cache, c << q->cluster_bits);
	}
	if (fdatasync(q->disk.fd) == -1) {
		disk_seterror(&q->disk, errno, "flush");
		goto out;
	}
	be64_put(hdr, first << q->cluster_bits);
	be32_put(hdr + 8, (uint32_t)table_clusters);
	if (qcow2_write_meta(q, hdr, sizeof(hdr), QH_REFTABLE_OFFSET, "header") == -1)
		goto out;
	free(q->reftable);
	q->reftable = table;
	table = NULL;
	q->reftable_entries = entries;
	q->h.reftable_offset = first << q->cluster_bits;
	q->h.reftable_clusters = (uint32_t)table_clusters;
	q->alloc_next = end << q->cluster_bits;
	q->reserve_start = q->alloc_next;
	note_used(q, q->alloc_next);
	/* the old table is freed only once the header no longer names it */
	if (fdatasync(q->disk.fd) == -1) {
		disk_seterror(&q->disk, errno, "flush");
		goto out;
	}
	rc = refcount_change(q, old_offset, old_clusters, -1);
out:
	free(table);
	free(meta);
	return rc;
}

/*
 * Makes sure refcount block region exists.  A new block goes at the end of
 * the file; when it lies in the region it describes, it counts itself.
 */
static int
create_refblock(struct qcow2 *q, uint64_t region)
{
	uint64_t at, at_cluster, rbe = q->refblock_entries;
	uint8_t *block;
	int rc;

	if (region >= q->reftable_entries)
		return grow_reftable(q, region);
	if (release_reserve(q) == -1)
		return -1;
	at = q->alloc_next;
	at_cluster = at >> q->cluster_bits;
	if (at_cluster / rbe != region && refcount_change(q, at, 1, 1) == -1)
		return -1;
	if ((block = calloc(1, q->cluster_size)) == NULL) {
		disk_seterror(&q->disk, errno, "new refcount block");
		return -1;
	}
	if (at_cluster / rbe == region)
		qcow2_refcount_set(q, block, at_cluster % rbe, 1);
	rc = qcow2_write_meta(q, block, q->cluster_size, at, "refcount block");
	free(block);
	if (rc == -1)
		return -1;
	cache_forget(&q->refblock_cache, at);
	cache_forget(&q->l2_cache, at);
	q->alloc_next = at + q->cluster_size;
	q->reserve_start = q->alloc_next;
	note_used(q, q->alloc_next);
	/* the block must be durable before the table points at it */
	if (fdatasync(q->disk.fd) == -1) {
		disk_seterror(&q->disk, errno, "flush");
		return -1;
	}
	return set_reftable_entry(q, region, at);
}

/* Adds count clusters at the end of the file to the reserve. */
static int
reserve_more(struct qcow2 *q, uint64_t count)
{
	for (;;) {
		uint64_t first = q->alloc_next >> q->cluster_bits;
		uint64_t last = first + count - 1, g;
		uint64_t rbe = q->refblock_entries;

		for (g = first / rbe; g <= last / rbe; g++)
			if (refblock_offset(q, g) == 0)
				break;
		if (g <= last / rbe) {
			if (create_refblock(q, g) == -1)
				return -1;
			continue; /* the end of the file moved */
		}
		/* A hostile image may count clusters past its end. */
		for (uint64_t c = first; c <= last; c++) {
			uint64_t v;
			if (refcount_get(q, c << q->cluster_bits, &v) == -1)
				return -1;
			if (v != 0) {
				/* A killed writer leaves at most a reserve
				 * extent; far more means bogus refcounts. */
				if (++q->skipped > (1u << 20)) {
					disk_seterror(&q->disk, 0, "refcounts "
					    "claim clusters far past the end of "
					    "the file (corrupt image)");
					return -1;
				}
				if (release_reserve(q) == -1)
					return -1;
				q->alloc_next = (c + 1) << q->cluster_bits;
				q->reserve_start = q->alloc_next;
				break;
			}
		}
		if (q->alloc_next != first << q->cluster_bits)
			continue;
		if (refcount_change(q, q->alloc_next, count, 1) == -1)
			return -1;
		q->alloc_next += count << q->cluster_bits;
		return 0;
	}
}

/* Hands out count contiguous new clusters; returns the host offset or 0. */
static uint64_t
alloc_clusters(struct qcow2 *q, uint64_t count)
{
	uint64_t have = (q->alloc_next - q->reserve_start) >> q->cluster_bits;
	uint64_t extent = ALLOC_EXTENT_BYTES >> q->cluster_bits, host;

	if (have < count) {
		uint64_t more = count - have;

		if (more < extent)
			more = extent;
		if (reserve_more(q, more) == -1)
			return 0;
		/* a reserve that is no longer contiguous was given back */
		if (q->alloc_next - q->reserve_start < count << q->cluster_bits) {
			disk_seterror(&q->disk, 0, "allocation failed");
			return 0;
		}
	}
	host = q->reserve_start;
	q->reserve_start += count << q->cluster_bits;
	note_used(q, q->reserve_start);
	return host;
}

/* ---- mapping guest offsets --------------------------------------------- */

static int
classify(struct qcow2 *q, uint64_t entry, enum extent_kind *kind,
    uint64_t *host)
{
	*host = entry & QCOW2_OFFSET_MASK;
	if (entry & QCOW2_OFLAG_COMPRESSED) {
		*kind = EXTENT_COMPRESSED;
		return 0;
	}
	if (q->h.version >= 3 && (entry & QCOW2_OFLAG_ZERO))
		*kind = EXTENT_ZERO;
	else if (*host == 0)
		*kind = EXTENT_UNALLOCATED;
	else if (*host & (q->cluster_size - 1)) {
		disk_seterror(&q->disk, 0, "L2 entry 0x%llx: data offset is "
		    "not cluster aligned (corrupt image)",
		    (unsigned long long)entry);
		return -1;
	} else
		*kind = EXTENT_DATA;
	return 0;
}

/* The L2 table for guest offset, or NULL with *missing set if none. */
static uint8_t *
l2_table(struct qcow2 *q, uint64_t offset, int *missing)
{
	uint64_t index = offset >> (q->cluster_bits + q->l2_bits);
	uint64_t l2_offset;

	*missing = 0;
	if (index >= q->h.l1_size) {
		*missing = 1;
		return NULL;
	}
	l2_offset = q->l1[index] & QCOW2_OFFSET_MASK;
	if (l2_offset == 0) {
		*missing = 1;
		return NULL;
	}
	return table_get(q, &q->l2_cache, l2_offset, 0, "L2 table");
}

static uint64_t
l2_get(const uint8_t *l2, uint64_t slot)
{
	return be64_get(l2 + slot * 8);
}

/* The longest run from offset (at most len, within one L2 table) that
 * reads the same way. */
static int
map_extent(struct qcow2 *q, uint64_t offset, uint64_t len, struct extent *x)
{
	uint64_t cs = q->cluster_size, in = offset & (cs - 1);
	uint64_t span = 1ULL << (q->cluster_bits + q->l2_bits);
	uint64_t limit = min64(len, span - (offset & (span - 1)));
	uint64_t slot, done, base, host;
	enum extent_kind kind;
	uint8_t *l2;
	int missing;

	l2 = l2_table(q, offset, &missing);
	if (l2 == NULL) {
		if (!missing)
			return -1;
		x->kind = EXTENT_UNALLOCATED;
		x->len = limit;
		return 0;
	}
	slot = (offset >> q->cluster_bits) & (q->l2_entries - 1);
	x->entry = l2_get(l2, slot);
	if (classify(q, x->entry, &x->kind, &base) == -1)
		return -1;
	x->host = base + in;
	done = min64(cs - in, limit);
	if (x->kind == EXTENT_COMPRESSED) {
		x->len = done;
		return 0;
	}
	for (uint64_t k = 1; done < limit; k++) {
		if (classify(q, l2_get(l2, slot + k), &kind, &host) == -1)
			return -1;
		if (kind != x->kind ||
		    (kind == EXTENT_DATA && host != base + k * cs))
			break;
		done += min64(cs, limit - done);
	}
	x->len = done;
	return 0;
}

/* ---- reading ----------------------------------------------------------- */

/* What lies below this image: the backing file, zeros past its end. */
static int
read_below(struct qcow2 *q, uint8_t *buf, uint64_t len, uint64_t offset)
{
	struct disk *b = q->disk.backing;
	uint64_t n = 0;

	if (b != NULL && offset < b->size) {
		n = min64(len, b->size - offset);
		if (b->ops->read(b, buf, n, offset) == -1) {
			disk_seterror(&q->disk, 0, "%s", b->error);
			return -1;
		}
	}
	memset(buf + n, 0, len - n);
	return 0;
}

static int
read_host(struct qcow2 *q, uint8_t *buf, uint64_t len, uint64_t host)
{
	size_t got;

	if (disk_pread_full(q->disk.fd, buf, len, host, &got) == -1) {
		disk_seterror(&q->disk, errno, "read at host offset %llu",
		    (unsigned long long)host);
		return -1;
	}
	memset(buf + got, 0, len - got); /* past the end of the file */
	return 0;
}

static const uint8_t *
inflate_cluster(struct qcow2 *q, uint64_t entry)
{
	uint64_t coffset = entry & q->coffset_mask;
	uint64_t sectors = ((entry >> q->csize_shift) & q->csize_mask) + 1;
	uint64_t csize = sectors * 512 - (coffset & 511);
	size_t got;
	int rc;

	if (q->inflated_entry == entry)
		return q->inflated;
	q->inflated_entry = 0;
	if (disk_pread_full(q->disk.fd, q->compressed, csize, coffset,
	    &got) == -1) {
		disk_seterror(&q->disk, errno, "reading compressed cluster "
		    "at %llu", (unsigned long long)coffset);
		return NULL;
	}
	inflateReset(&q->zs);
	q->zs.next_in = q->compressed;
	q->zs.avail_in = (uInt)got;
	q->zs.next_out = q->inflated;
	q->zs.avail_out = (uInt)q->cluster_size;
	rc = inflate(&q->zs, Z_FINISH);
	/* The stored sectors may end with padding after the stream. */
	if ((rc != Z_STREAM_END && rc != Z_BUF_ERROR && rc != Z_OK) ||
	    q->zs.avail_out != 0) {
		disk_seterror(&q->disk, 0, "compressed cluster at %llu does "
		    "not inflate to a cluster (corrupt image)",
		    (unsigned long long)coffset);
		return NULL;
	}
	q->inflated_entry = entry;
	return q->inflated;
}

static int
read_extent(struct qcow2 *q, const struct extent *x, uint8_t *buf,
    uint64_t offset)
{
	const uint8_t *cluster;

	switch (x->kind) {
	case EXTENT_UNALLOCATED:
		return read_below(q, buf, x->len, offset);
	case EXTENT_ZERO:
		memset(buf, 0, x->len);
		return 0;
	case EXTENT_DATA:
		return read_host(q, buf, x->len, x->host);
	case EXTENT_COMPRESSED:
		if ((cluster = inflate_cluster(q, x->entry)) == NULL)
			return -1;
		memcpy(buf, cluster + (offset & (q->cluster_size - 1)), x->len);
		return 0;
	}
	return -1;
}

static int
qcow2_read(struct disk *disk, void *buf, size_t len, uint64_t offset)
{
	struct qcow2 *q = to_qcow2(disk);
	uint8_t *p = buf;
	struct extent x;

	while (len > 0) {
		if (map_extent(q, offset, len, &x) == -1 ||
		    read_extent(q, &x, p, offset) == -1)
			return -1;
		p += x.len;
		offset += x.len;
		len -= x.len;
	}
	return 0;
}

static int
qcow2_block_status(struct disk *disk, uint64_t offset, uint64_t len,
    uint64_t *run)
{
	struct qcow2 *q = to_qcow2(disk);
	struct disk *b = disk->backing;
	struct extent x;
	int status;

	if (map_extent(q, offset, len, &x) == -1)
		return -1;
	*run = x.len;
	switch (x.kind) {
	case EXTENT_ZERO:
		return DISK_STATUS_ZERO;
	case EXTENT_UNALLOCATED:
		if (b == NULL)
			return DISK_STATUS_ZERO;
		if (offset >= b->size)
			return DISK_STATUS_ZERO;
		status = b->ops->block_status(b, offset,
		    min64(x.len, b->size - offset), run);
		if (status == -1)
			disk_seterror(disk, 0, "%s", b->error);
		return status;
	default:
		return DISK_STATUS_DATA;
	}
}

/* Data clusters lie as-is in the file, unallocated ones in the backing
 * file; zero and compressed clusters must be read. */
static int
qcow2_map(struct disk *disk, uint64_t offset, uint64_t len,
    struct disk_mapping *m)
{
	struct qcow2 *q = to_qcow2(disk);
	struct disk *b = disk->backing;
	struct extent x;
	int rc;

	if (map_extent(q, offset, len, &x) == -1)
		return -1;
	m->len = x.len;
	if (x.kind == EXTENT_DATA) {
		m->fd = disk->fd;
		m->host = x.host;
		return 1;
	}
	if (x.kind != EXTENT_UNALLOCATED || b == NULL || offset >= b->size ||
	    b->ops->map == NULL)
		return 0;
	rc = b->ops->map(b, offset, min64(x.len, b->size - offset), m);
	if (rc == -1)
		disk_seterror(disk, 0, "%s", b->error);
	return rc;
}

/* ---- writing ----------------------------------------------------------- */

/* Whether the cluster an entry maps reads as zeros (no copy needed). */
static int
reads_zero(struct qcow2 *q, uint64_t entry, uint64_t guest)
{
	enum extent_kind kind;
	uint64_t host;

	if (classify(q, entry, &kind, &host) == -1)
		return 0;
	if (kind == EXTENT_ZERO)
		return 1;
	if (kind == EXTENT_UNALLOCATED)
		return q->disk.backing == NULL || guest >= q->disk.backing->size;
	return 0;
}

/* The whole current content of one guest cluster. */
static int
read_cluster(struct qcow2 *q, uint64_t entry, uint64_t guest, uint8_t *buf)
{
	struct extent x;

	if (classify(q, entry, &x.kind, &x.host) == -1)
		return -1;
	x.entry = entry;
	x.len = q->cluster_size;
	return read_extent(q, &x, buf, guest);
}

/* Frees what an L2 entry that is no longer referenced pointed at. */
int
qcow2_free_entry(struct qcow2 *q, uint64_t entry, int punch)
{
	enum extent_kind kind;
	uint64_t host, value;

	if (entry & QCOW2_OFLAG_COMPRESSED) {
		uint64_t coffset = entry & q->coffset_mask;
		uint64_t sectors = ((entry >> q->csize_shift) & q->csize_mask) + 1;
		uint64_t start = coffset & ~511ULL;
		uint64_t first = start >> q->cluster_bits;
		uint64_t last = (start + sectors * 512 - 1) >> q->cluster_bits;

		if (q->inflated_entry == entry)
			q->inflated_entry = 0;
		return refcount_change(q, first << q->cluster_bits,
		    last - first + 1, -1);
	}
	host = entry & QCOW2_OFFSET_MASK;
	if (host == 0)
		return 0;
	if (classify(q, entry & ~QCOW2_OFLAG_ZERO, &kind, &host) == -1)
		return -1;
	if (refcount_change(q, host, 1, -1) == -1)
		return -1;
	if (punch && refcount_get(q, host, &value) == 0 && value == 0)
		(void)fallocate(q->disk.fd, FALLOC_FL_PUNCH_HOLE |
		    FALLOC_FL_KEEP_SIZE, (off_t)host, (off_t)q->cluster_size);
	return 0;
}

/*
 * A new L2 table in place of L1 entry index, empty or (copy-on-write of a
 * table that a snapshot shares) a copy of the table at old.  The table and
 * the L1 entry reach the file at the next sync, the table first; the old
 * table loses this reference after that.
 */
static uint8_t *
l2_table_new(struct qcow2 *q, uint64_t index, uint64_t old,
    uint64_t *l2_offset)
{
	uint8_t *l2;

	if (old != 0) {
		/* q->head is free: a write uses it only once it has a table */
		if ((l2 = table_get(q, &q->l2_cache, old, 0, "L2 table")) == NULL)
			return NULL;
		memcpy(q->head, l2, q->cluster_size);
	}
	if ((*l2_offset = alloc_clusters(q, 1)) == 0)
		return NULL;
	l2 = table_get(q, &q->l2_cache, *l2_offset, 1, "L2 table");
	if (l2 == NULL)
		return NULL;
	if (old != 0)
		memcpy(l2, q->head, q->cluster_size);
	qcow2_l2_fresh(q, l2);
	q->l1[index] = *l2_offset | QCOW2_OFLAG_COPIED;
	qcow2_l1_dirty(q, index);
	if (old != 0)
		qcow2_defer_free(q, old, 0);
	return l2;
}

/* The L2 table for a write at offset, made or copied if need be. */
static uint8_t *
l2_table_for_write(struct qcow2 *q, uint64_t offset, uint64_t *l2_offset)
{
	uint64_t index = offset >> (q->cluster_bits + q->l2_bits);
	uint64_t entry = q->l1[index], value;

	*l2_offset = entry & QCOW2_OFFSET_MASK;
	if (*l2_offset == 0)
		return l2_table_new(q, index, 0, l2_offset);
	if (!(entry & QCOW2_OFLAG_COPIED)) {
		if (refcount_get(q, *l2_offset, &value) == -1)
			return NULL;
		if (value == 0) {
			disk_seterror(&q->disk, 0, "L2 table at %llu has "
			    "refcount 0 (corrupt image)",
			    (unsigned long long)*l2_offset);
			return NULL;
		}
		if (value > 1) /* shared with a snapshot */
			return l2_table_new(q, index, *l2_offset, l2_offset);
		q->l1[index] |= QCOW2_OFLAG_COPIED;
		qcow2_l1_dirty(q, index);
	}
	return table_get(q, &q->l2_cache, *l2_offset, 0, "L2 table");
}

enum write_class { WRITE_IN_PLACE, WRITE_ALLOCATE };

static int
write_class(struct qcow2 *q, uint64_t entry, enum write_class *class)
{
	enum extent_kind kind;
	uint64_t host, value;

	if (classify(q, entry, &kind, &host) == -1)
		return -1;
	*class = WRITE_ALLOCATE;
	if (kind != EXTENT_DATA)
		return 0;
	if (!(entry & QCOW2_OFLAG_COPIED)) {
		if (refcount_get(q, host, &value) == -1)
			return -1;
		if (value != 1)
			return 0;
	}
	*class = WRITE_IN_PLACE;
	return 0;
}

static int
pwritev_full(struct qcow2 *q, struct iovec *iov, int count, uint64_t offset)
{
	while (count > 0) {
		ssize_t n = pwritev(q->disk.fd, iov, count, (off_t)offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			disk_seterror(&q->disk, n < 0 ? errno : ENOSPC,
			    "write at host offset %llu",
			    (unsigned long long)offset);
			return -1;
		}
		offset += (uint64_t)n;
		while (count > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			count--;
		}
		if (count > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/*
 * Writes len bytes at guest offset into count new clusters that replace
 * the entries from slot on.  The data is written now; the L2 entries change
 * in the cache and the old clusters are freed at the next sync, in that
 * order (qcow2_writeback.c).
 */
static int
write_allocating(struct qcow2 *q, uint8_t *l2, uint64_t slot, uint64_t count, const uint8_t *buf, uint64_t len,
    uint64_t offset)
{
	uint64_t cs = q->cluster_size, in = offset & (cs - 1);
	uint64_t guest = offset - in, host;
	uint64_t head_len = min64(cs - in, len), tail_len;
	uint64_t first = l2_get(l2, slot), last = l2_get(l2, slot + count - 1);
	uint64_t start;
	struct iovec iov[3];
	int n = 0;

	if ((host = alloc_clusters(q, count)) == 0)
		return -1;
	/* alloc_clusters touched only refcount blocks: l2 is still valid */
	start = host + in;
	if (head_len < cs && !reads_zero(q, first, guest)) {
		if (read_cluster(q, first, guest, q->head) == -1)
			return -1;
		memcpy(q->head + in, buf, head_len);
		iov[n++] = (struct iovec){ q->head, cs };
		start = host;
	} else {
		iov[n++] = (struct iovec){ (void *)buf, head_len };
	}
	if (count > 1) {
		uint64_t middle = (count - 2) * cs;

		if (middle > 0)
			iov[n++] = (struct iovec){ (void *)(buf + head_len),
			    middle };
		tail_len = len - head_len - middle;
		if (tail_len < cs && !reads_zero(q, last,
		    guest + (count - 1) * cs)) {
			if (read_cluster(q, last, guest + (count - 1) * cs,
			    q->tail) == -1)
				return -1;
			memcpy(q->tail, buf + len - tail_len, tail_len);
			iov[n++] = (struct iovec){ q->tail, cs };
		} else {
			iov[n++] = (struct iovec){ (void *)(buf + len -
			    tail_len), tail_len };
		}
	}
	if (pwritev_full(q, iov, n, start) == -1)
		return -1;

	/* the entries reach the file at the next sync, after the data */
	for (uint64_t k = 0; k < count; k++) {
		qcow2_defer_free(q, l2_get(l2, slot + k), 0);
		be64_put(l2 + (slot + k) * 8, (host + k * cs) |
		    QCOW2_OFLAG_COPIED);
	}
	qcow2_l2_dirty(q, l2, slot, count);
	return 0;
}

static int
qcow2_write(struct disk *disk, const void *buf, size_t len, uint64_t offset)
{
	struct qcow2 *q = to_qcow2(disk);
	uint64_t cs = q->cluster_size;
	uint64_t span = 1ULL << (q->cluster_bits + q->l2_bits);
	const uint8_t *p = buf;

	while (len > 0) {
		uint64_t l2_offset, slot, in = offset & (cs - 1), done, count;
		uint64_t limit = min64(len, span - (offset & (span - 1)));
		uint64_t base, host;
		enum write_class class, next;
		enum extent_kind kind;
		uint8_t *l2;

		if (qcow2_sync_if_backlogged(q) == -1 ||
		    (l2 = l2_table_for_write(q, offset, &l2_offset)) == NULL)
			return -1;
		slot = (offset >> q->cluster_bits) & (q->l2_entries - 1);
		if (write_class(q, l2_get(l2, slot), &class) == -1)
			return -1;
		/* write_class may read refcounts, never another L2 table */
		classify(q, l2_get(l2, slot), &kind, &base);
		done = min64(cs - in, limit);
		for (count = 1; done < limit && count < WRITE_RUN_MAX; count++) {
			uint64_t entry = l2_get(l2, slot + count);

			if (write_class(q, entry, &next) == -1)
				return -1;
			if (next != class)
				break;
			if (class == WRITE_IN_PLACE) {
				classify(q, entry, &kind, &host);
				if (host != base + count * cs)
					break;
			}
			done += min64(cs, limit - done);
		}
		if (class == WRITE_IN_PLACE) {
			if (disk_pwrite_full(disk->fd, p, done, base + in) == -1) {
				disk_seterror(disk, errno, "write at host "
				    "offset %llu", (unsigned long long)(base + in));
				return -1;
			}
		} else if (write_allocating(q, l2, slot, count, p,
		    done, offset) == -1) {
			return -1;
		}
		p += done;
		offset += done;
		len -= done;
	}
	return 0;
}

/* Makes the file cover every cluster handed out (qemu-img check wants
 * metadata and data inside the file). */
int
qcow2_extend_file(struct qcow2 *q)
{
	struct stat st;

	if (fstat(q->disk.fd, &st) == -1) {
		disk_seterror(&q->disk, errno, "stat");
		return -1;
	}
	if ((uint64_t)st.st_size < q->used_end &&
	    ftruncate(q->disk.fd, (off_t)q->used_end) == -1) {
		disk_seterror(&q->disk, errno, "extending the file");
		return -1;
	}
	return 0;
}

static int
qcow2_flush(struct disk *disk)
{
	return qcow2_sync(to_qcow2(disk));
}

/* The old clusters are freed (and punched) after the next sync. */
static void
discard_entries(struct qcow2 *q, uint8_t *l2, uint64_t slot, uint64_t count,
    uint64_t replacement)
{
	for (uint64_t k = 0; k < count; k++) {
		qcow2_defer_free(q, l2_get(l2, slot + k), 1);
		be64_put(l2 + (slot + k) * 8, replacement);
	}
	qcow2_l2_dirty(q, l2, slot, count);
}

/* Drops whole clusters in the range; partial clusters keep their data. */
static int
qcow2_discard(struct disk *disk, uint64_t offset, uint64_t len)
{
	struct qcow2 *q = to_qcow2(disk);
	uint64_t cs = q->cluster_size, end = offset + len;
	uint64_t span = 1ULL << (q->cluster_bits + q->l2_bits);
	uint64_t replacement;

	if (end == disk->size)
		end = (end + cs - 1) & ~(cs - 1);
	offset = (offset + cs - 1) & ~(cs - 1);
	end &= ~(cs - 1);
	if (disk->backing == NULL)
		replacement = 0;
	else if (q->h.version >= 3)
		replacement = QCOW2_OFLAG_ZERO;
	else
		return 0; /* v2 cannot hide the backing file's data */
	while (offset < end) {
		uint64_t stop = min64(end, (offset & ~(span - 1)) + span);
		uint64_t slot = (offset >> q->cluster_bits) & (q->l2_entries - 1);
		uint64_t count = (stop - offset) >> q->cluster_bits;
		uint8_t *l2;
		int missing;

		if (count > WRITE_RUN_MAX)
			count = WRITE_RUN_MAX;
		if (qcow2_sync_if_backlogged(q) == -1)
			return -1;
		l2 = l2_table(q, offset, &missing);
		if (l2 == NULL && !missing)
			return -1;
		if (l2 != NULL && q->l1[offset >> (q->cluster_bits +
		    q->l2_bits)] & QCOW2_OFLAG_COPIED)
			discard_entries(q, l2, slot, count, replacement);
		offset += count << q->cluster_bits;
	}
	return 0;
}

static void
qcow2_close(struct disk *disk)
{
	struct qcow2 *q = to_qcow2(disk);

	if (disk->writable && q->reftable != NULL) {
		(void)qcow2_sync(q);
		(void)release_reserve(q);
		(void)qcow2_extend_file(q);
	}
	if (q->zs_ready)
		inflateEnd(&q->zs);
	cache_free(&q->l2_cache);
	cache_free(&q->refblock_cache);
	free(q->l1);
	free(q->reftable);
	free(q->head);
	free(q->tail);
	free(q->compressed);
	free(q->inflated);
	free(q->pending);
	close(disk->fd);
	free(q);
}

static const struct disk_ops qcow2_ops = {
	.read = qcow2_read,
	.write = qcow2_write,
	.flush = qcow2_flush,
	.discard = qcow2_discard,
	.block_status = qcow2_block_status,
	.map = qcow2_map,
	.close = qcow2_close,
};

/* ---- opening ----------------------------------------------------------- */

#define OPEN_FAIL(...)                                                        \
	do {                                                                  \
		disk_errorf_named(err, name, __VA_ARGS__);                    \
		goto fail;                                                    \
	} while (0)

static unsigned
cache_count(uint64_t budget, uint64_t cluster_size, unsigned lo, unsigned hi)
{
	uint64_t n = budget / cluster_size;

	return n < lo ? lo : n > hi ? hi : (unsigned)n;
}

static int
load_table(int fd, uint64_t offset, uint64_t entries, uint64_t **table,
    uint64_t file_size)
{
	uint8_t *raw;
	size_t got;

	if (offset > file_size || entries * 8 > file_size - offset) {
		errno = ERANGE;
		return -1;
	}
	*table = calloc(entries ? entries : 1, sizeof(uint64_t));
	raw = malloc(entries ? entries * 8 : 1);
	if (*table == NULL || raw == NULL) {
		free(raw);
		return -1;
	}
	if (disk_pread_full(fd, raw, entries * 8, offset, &got) == -1 ||
	    got != entries * 8) {
		if (errno == 0)
			errno = ERANGE;
		free(raw);
		return -1;
	}
	for (uint64_t i = 0; i < entries; i++)
		(*table)[i] = be64_get(raw + i * 8);
	free(raw);
	return 0;
}

static int
check_writable(struct qcow2 *q, const char *name, char *err)
{
	const struct qcow2_header *h = &q->h;
	uint64_t cs = q->cluster_size;
	uint8_t be[8];

	if (h->incompatible & QCOW2_INCOMPAT_CORRUPT)
		OPEN_FAIL("is marked corrupt: repair it with qemu-img check "
		    "-r all");
	/* Lazy refcounts left stale by a writer that did not close: count
	 * again, as qemu-img check -r all would.  Read-only use needs none. */
	if ((h->incompatible & QCOW2_INCOMPAT_DIRTY) &&
	    qcow2_repair_refcounts(q, name, err) == -1)
		goto fail;
	if (h->reftable_clusters == 0 ||
	    (h->reftable_offset & (cs - 1)) != 0 ||
	    (uint64_t)h->reftable_clusters * cs > QCOW2_MAX_REFTABLE_BYTES)
		OPEN_FAIL("refcount table (offset %llu, %u clusters) is invalid",
		    (unsigned long long)h->reftable_offset,
		    h->reftable_clusters);
	q->reftable_entries = (uint64_t)h->reftable_clusters * cs / 8;
	if (load_table(q->disk.fd, h->reftable_offset, q->reftable_entries,
	    &q->reftable, h->file_size) == -1)
		OPEN_FAIL("refcount table at %llu: %s",
		    (unsigned long long)h->reftable_offset,
		    errno == ERANGE ? "beyond the end of the file (truncated "
		    "image)" : strerror(errno));
	for (uint64_t i = 0; i < q->reftable_entries; i++)
		if (q->reftable[i] & (cs - 1) & QCOW2_REFTABLE_OFFSET_MASK)
			OPEN_FAIL("refcount table entry %llu is not cluster "
			    "aligned", (unsigned long long)i);
	/* We do not keep the bitmaps or other autoclear data up to date. */
	if (h->version >= 3 && h->autoclear != 0) {
		be64_put(be, 0);
		if (disk_pwrite_full(q->disk.fd, be, 8, QH_AUTOCLEAR) == -1)
			OPEN_FAIL("clearing autoclear features: %s",
			    strerror(errno));
		q->h.autoclear = 0;
	}
	q->alloc_next = (h->file_size + cs - 1) & ~(cs - 1);
	q->reserve_start = q->alloc_next;
	q->used_end = h->file_size;
	return 0;
fail:
	return -1;
}

struct disk *
qcow2_open_fd(int fd, const char *name, int writable, struct disk *backing,
    char *err)
{
	struct qcow2 *q;
	struct qcow2_header *h;
	uint64_t cs, span, needed;

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		disk_errorf(err, "disk %s: %s", name,
		    strerror(errno));
		return NULL;
	}
	h = &q->h;
	if (qcow2_parse_header(fd, name, h, err) == -1) {
		free(q);
		return NULL;
	}
	q->disk.ops = &qcow2_ops;
	q->disk.format = DISK_FORMAT_QCOW2;
	q->disk.fd = fd;
	q->disk.writable = writable;
	snprintf(q->disk.name, sizeof(q->disk.name), "%s", name);
	q->cluster_bits = h->cluster_bits;
	q->cluster_size = cs = h->cluster_size;
	q->l2_bits = h->cluster_bits - 3;
	q->l2_entries = 1ULL << q->l2_bits;
	q->refblock_entries = cs * 8 >> h->refcount_order;
	q->refcount_max = h->refcount_order == 6 ? UINT64_MAX :
	    (1ULL << (1u << h->refcount_order)) - 1;
	q->csize_shift = 62 - (h->cluster_bits - 8);
	q->csize_mask = (1ULL << (h->cluster_bits - 8)) - 1;
	q->coffset_mask = (1ULL << q->csize_shift) - 1;

	if (h->size > QCOW2_MAX_SIZE)
		OPEN_FAIL("virtual size %llu is too large",
		    (unsigned long long)h->size);
	span = 1ULL << (q->cluster_bits + q->l2_bits);
	needed = (h->size + span - 1) / span;
	if (h->l1_size < needed)
		OPEN_FAIL("L1 table of %u entries is too small for the "
		    "virtual size %llu", h->l1_size,
		    (unsigned long long)h->size);
	if (h->l1_size > QCOW2_MAX_L1_ENTRIES)
		OPEN_FAIL("L1 table of %u entries is too large", h->l1_size);
	if (h->l1_size > 0 && (h->l1_offset & (cs - 1)) != 0)
		OPEN_FAIL("L1 table offset %llu is not cluster aligned",
		    (unsigned long long)h->l1_offset);
	if (load_table(fd, h->l1_offset, h->l1_size, &q->l1,
	    h->file_size) == -1)
		OPEN_FAIL("L1 table at %llu: %s",
		    (unsigned long long)h->l1_offset, errno == ERANGE ?
		    "beyond the end of the file (truncated image)" :
		    strerror(errno));
	q->disk.size = h->size;
	if (h->has_backing && backing == NULL)
		OPEN_FAIL("backing file %s is not open", h->backing);
	if (!h->has_backing && backing != NULL)
		OPEN_FAIL("has no backing file, but one was given");

	if (cache_init(&q->l2_cache, cache_count(8 << 20, cs, 4, 256),
	    cs) == -1 ||
	    cache_init(&q->refblock_cache, cache_count(1 << 20, cs, 4, 64),
	    cs) == -1 ||
	    (q->head = malloc(cs)) == NULL || (q->tail = malloc(cs)) == NULL ||
	    (q->compressed = malloc(2 * cs + 512)) == NULL ||
	    (q->inflated = malloc(cs)) == NULL)
		OPEN_FAIL("%s", strerror(errno));
	if (inflateInit2(&q->zs, -15) != Z_OK)
		OPEN_FAIL("zlib initialisation failed");
	q->zs_ready = 1;
	if (writable && check_writable(q, name, err) == -1)
		goto fail;
	q->disk.backing = backing;
	return &q->disk;
fail:
	q->disk.writable = 0; /* nothing to give back on close */
	q->disk.fd = -1;
	free(q->reftable);
	q->reftable = NULL;
	qcow2_close(&q->disk);
	return NULL;
}
