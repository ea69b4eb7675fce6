/* The qcow2 engine's own definitions: the parsed header and limits. */
#ifndef VMD_DISK_QCOW2_INTERNAL_H
#define VMD_DISK_QCOW2_INTERNAL_H

#include "disk/qcow2.h"

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

int qcow2_parse_header(int fd, const char *name, struct qcow2_header *h,
    char *err);

#endif
