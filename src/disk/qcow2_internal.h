/* The qcow2 engine's own definitions: the parsed header and limits. */
#ifndef VMD_DISK_QCOW2_INTERNAL_H
#define VMD_DISK_QCOW2_INTERNAL_H

#include "disk/qcow2.h"

#include <stddef.h>
#include <zlib.h>

/* Limits that keep a hostile header from making us allocate without bound
 * (the same order as qemu's). */
#define QCOW2_MAX_SIZE		 (1ULL << 56)
#define QCOW2_MAX_L1_ENTRIES	 (32ULL * 1024 * 1024 / 8)
#define QCOW2_MAX_REFTABLE_BYTES (32ULL * 1024 * 1024)

struct qcow2_header {
	uint64_t file_size;
	uint32_t version;
	uint64_t backing_offset;
	uint32_t backing_size;
	uint32_t cluster_bits;
	uint64_t cluster_size;
	uint64_t size;
	uint32_t crypt_method;
	uint32_t l1_size;
	uint64_t l1_offset;
	uint64_t reftable_offset;
	uint32_t reftable_clusters;
	uint32_t snapshot_count;
	uint64_t snapshot_offset;
	uint64_t incompatible;
	uint64_t compatible;
	uint64_t autoclear;
	uint32_t refcount_order;
	uint32_t header_length;
	uint8_t compression_type;
	int has_backing;
	char backing[QCOW2_BACKING_NAME_MAX + 1];
	enum disk_format backing_format;
};

/*
 * Cached metadata clusters.  Refcount blocks are written through; L2 tables
 * are written back (qcow2_writeback) so that they reach the file only after
 * the data and refcounts they depend on are durable.
 */
struct table_slot {
	uint64_t offset; /* host offset; 0 when empty */
	uint64_t last_use;
	uint8_t *data;
	uint64_t dirty_lo, dirty_hi; /* bytes changed since the write-back */
	int fresh; /* a new L2 table that no L1 entry on disk points at yet */
};

struct table_cache {
	struct table_slot *slot;
	unsigned count;
	unsigned last; /* the slot hit last: most lookups repeat */
	uint64_t clock;
};

enum extent_kind {
	EXTENT_UNALLOCATED, /* read from the backing file, or zeros */
	EXTENT_ZERO,
	EXTENT_DATA,
	EXTENT_COMPRESSED,
};

struct extent {
	enum extent_kind kind;
	uint64_t len;
	uint64_t host;	/* EXTENT_DATA: host offset of the first byte */
	uint64_t entry; /* EXTENT_COMPRESSED: the L2 entry */
};

struct qcow2 {
	struct disk disk;
	struct qcow2_header h;
	uint64_t cluster_size;
	unsigned cluster_bits;
	unsigned l2_bits; /* log2 of the entries in one L2 table */
	uint64_t l2_entries;
	uint64_t *l1;	      /* host byte order */
	uint64_t *reftable;   /* host byte order; only when writable */
	uint64_t reftable_entries;
	uint64_t refblock_entries;
	uint64_t refcount_max;
	unsigned csize_shift;
	uint64_t csize_mask;
	uint64_t coffset_mask;
	struct table_cache l2_cache;
	struct table_cache refblock_cache;
	uint8_t *head, *tail;  /* partial clusters of a write */
	uint8_t *compressed;   /* one compressed cluster as stored */
	uint8_t *inflated;     /* the cluster decompressed last */
	uint64_t inflated_entry;
	z_stream zs;
	int zs_ready;
	uint64_t alloc_next;	/* first cluster never handed out */
	uint64_t reserve_start; /* [reserve_start, alloc_next): counted, unused */
	uint64_t used_end;	/* end of the last cluster handed out */
	uint64_t skipped;	/* counted clusters found past the end */
	uint64_t l1_dirty_lo, l1_dirty_hi; /* L1 entries not yet written */
	struct pending_free *pending; /* clusters to free after write-back */
	size_t pending_count, pending_cap;
};

/* An L2 entry replaced in memory: what it pointed at is freed only once the
 * replacement is durable, so that no table on disk points at a freed
 * cluster. */
struct pending_free {
	uint64_t entry;
	int punch; /* also punch a hole (discard) */
};

/* qcow2.c */
int qcow2_write_meta(struct qcow2 *q, const void *buf, size_t len,
    uint64_t offset, const char *what);
int qcow2_extend_file(struct qcow2 *q);
int qcow2_free_entry(struct qcow2 *q, uint64_t entry, int punch);
size_t qcow2_refcount_set(const struct qcow2 *q, uint8_t *block, uint64_t i,
    uint64_t value);

/* qcow2_repair.c: refcounts counted again from the tables, dirty bit cleared */
int qcow2_repair_refcounts(struct qcow2 *q, const char *name, char *err);

/* qcow2_writeback.c: ordered write-back of L2 tables and the L1 table */
void qcow2_l2_dirty(struct qcow2 *q, const uint8_t *l2, uint64_t first,
    uint64_t count);
void qcow2_l2_fresh(struct qcow2 *q, const uint8_t *l2);
void qcow2_l1_dirty(struct qcow2 *q, uint64_t index);
void qcow2_defer_free(struct qcow2 *q, uint64_t entry, int punch);
int qcow2_sync(struct qcow2 *q);
int qcow2_sync_if_backlogged(struct qcow2 *q);

int qcow2_parse_header(int fd, const char *name, struct qcow2_header *h,
    char *err);

#endif
