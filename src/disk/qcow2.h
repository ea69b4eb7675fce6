/*
 * qcow2 facts shared by the engine (qcow2.c), image creation and chain
 * opening.  The format is described in QEMU's docs/interop/qcow2.txt; all
 * numbers on disk are big-endian.
 */
#ifndef VMD_DISK_QCOW2_H
#define VMD_DISK_QCOW2_H

#include <stdint.h>

#include "disk/disk.h"

#define QCOW2_MAGIC		0x514649fbU /* "QFI\xfb" */
#define QCOW2_V2_HEADER_LEN	72
#define QCOW2_V3_HEADER_LEN	104
#define QCOW2_MIN_CLUSTER_BITS	9
#define QCOW2_MAX_CLUSTER_BITS	21
#define QCOW2_BACKING_NAME_MAX	1023

/* Header field offsets. */
#define QH_MAGIC		0
#define QH_VERSION		4
#define QH_BACKING_OFFSET	8
#define QH_BACKING_SIZE		16
#define QH_CLUSTER_BITS		20
#define QH_SIZE			24
#define QH_CRYPT_METHOD		32
#define QH_L1_SIZE		36
#define QH_L1_OFFSET		40
#define QH_REFTABLE_OFFSET	48
#define QH_REFTABLE_CLUSTERS	56
#define QH_SNAPSHOT_COUNT	60
#define QH_SNAPSHOT_OFFSET	64
#define QH_INCOMPATIBLE		72
#define QH_COMPATIBLE		80
#define QH_AUTOCLEAR		88
#define QH_REFCOUNT_ORDER	96
#define QH_HEADER_LENGTH	100
#define QH_COMPRESSION_TYPE	104

/* Feature bits. */
#define QCOW2_INCOMPAT_DIRTY	     (1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT	     (1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE     (1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION   (1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2	     (1ULL << 4)
#define QCOW2_INCOMPAT_KNOWN	     0x1fULL
#define QCOW2_COMPAT_LAZY_REFCOUNTS  (1ULL << 0)

/* Header extension types. */
#define QCOW2_EXT_END		     0x00000000U
#define QCOW2_EXT_BACKING_FORMAT     0xe2792acaU
#define QCOW2_EXT_FEATURE_NAMES	     0x6803f857U
#define QCOW2_EXT_DATA_FILE	     0x44415441U

/* Table entries. */
#define QCOW2_OFLAG_COPIED	     (1ULL << 63) /* refcount is exactly 1 */
#define QCOW2_OFLAG_COMPRESSED	     (1ULL << 62)
#define QCOW2_OFLAG_ZERO	     (1ULL << 0)
#define QCOW2_OFFSET_MASK	     0x00fffffffffffe00ULL /* bits 9-55 */
#define QCOW2_REFTABLE_OFFSET_MASK   0xfffffffffffffe00ULL

/* What chain opening needs to know of an image's header. */
struct qcow2_info {
	uint32_t version;
	uint32_t cluster_bits;
	uint64_t size;
	int has_backing;
	char backing[QCOW2_BACKING_NAME_MAX + 1];
	enum disk_format backing_format; /* AUTO when the image names none */
};

int qcow2_read_info(int fd, const char *name, struct qcow2_info *info,
    char *err);

/*
 * Writes a new, empty qcow2 v3 image of the given virtual size into fd
 * (which must be empty), with an optional backing file name and format.
 */
int qcow2_create_fd(int fd, const char *name, uint64_t size,
    uint32_t cluster_bits, const char *backing,
    enum disk_format backing_format, char *err);

static inline uint16_t
be16_get(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t
be64_get(const uint8_t *p)
{
	return (uint64_t)be32_get(p) << 32 | be32_get(p + 4);
}

static inline void
be16_put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void
be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void
be64_put(uint8_t *p, uint64_t v)
{
	be32_put(p, (uint32_t)(v >> 32));
	be32_put(p + 4, (uint32_t)v);
}

#endif
