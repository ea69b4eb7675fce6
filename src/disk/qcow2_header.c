/*
 * qcow2 header parsing and image creation.  Everything read here comes from
 * an untrusted file: each field is checked before it is used.
 */
#include "disk/qcow2_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FAIL(...)                                                        \
	do {                                                                  \
		disk_errorf_named(err, name, __VA_ARGS__);                    \
		goto fail;                                                    \
	} while (0)

static int
parse_extensions(const uint8_t *cluster, size_t avail, size_t start,
    size_t end, struct qcow2_header *h, const char *name, char *err)
{
	size_t pos = start;

	if (end > avail)
		end = avail;
	while (pos + 8 <= end) {
		uint32_t type = be32_get(cluster + pos);
		uint32_t len = be32_get(cluster + pos + 4);

		pos += 8;
		if (type == QCOW2_EXT_END)
			return 0;
		if (len > end - pos)
			FAIL("header extension 0x%08x overruns the header "
			    "cluster", type);
		if (type == QCOW2_EXT_BACKING_FORMAT) {
			char fmt[32];

			if (len == 0 || len >= sizeof(fmt))
				FAIL("backing format name of %u bytes", len);
			memcpy(fmt, cluster + pos, len);
			fmt[len] = '\0';
			h->backing_format = disk_format_parse(fmt);
			if (h->backing_format == DISK_FORMAT_AUTO)
				FAIL("backing format '%.31s' is not supported",
				    fmt);
		}
		/* Other extensions (feature names, bitmaps) are not needed
		 * to read or write guest data; they stay in the file. */
		pos += ((size_t)len + 7) & ~(size_t)7;
	}
	return 0;
fail:
	return -1;
}

int
qcow2_parse_header(int fd, const char *name, struct qcow2_header *h,
    char *err)
{
	uint8_t *cluster = NULL;
	uint8_t fixed[QCOW2_V3_HEADER_LEN + 8];
	size_t got, len;
	struct stat st;
	uint64_t unknown;

	memset(h, 0, sizeof(*h));
	if (fstat(fd, &st) == -1)
		FAIL("%s", strerror(errno));
	h->file_size = (uint64_t)st.st_size;
	if (disk_pread_full(fd, fixed, sizeof(fixed), 0, &got) == -1)
		FAIL("reading the header: %s", strerror(errno));
	if (got < 8 || be32_get(fixed + QH_MAGIC) != QCOW2_MAGIC)
		FAIL("not a qcow2 image");
	h->version = be32_get(fixed + QH_VERSION);
	if (h->version != 2 && h->version != 3)
		FAIL("qcow2 version %u is not supported", h->version);
	if (got < (h->version == 2 ? QCOW2_V2_HEADER_LEN : QCOW2_V3_HEADER_LEN))
		FAIL("truncated header (%zu bytes)", got);

	h->backing_offset = be64_get(fixed + QH_BACKING_OFFSET);
	h->backing_size = be32_get(fixed + QH_BACKING_SIZE);
	h->cluster_bits = be32_get(fixed + QH_CLUSTER_BITS);
	h->size = be64_get(fixed + QH_SIZE);
	h->crypt_method = be32_get(fixed + QH_CRYPT_METHOD);
	h->l1_size = be32_get(fixed + QH_L1_SIZE);
	h->l1_offset = be64_get(fixed + QH_L1_OFFSET);
	h->reftable_offset = be64_get(fixed + QH_REFTABLE_OFFSET);
	h->reftable_clusters = be32_get(fixed + QH_REFTABLE_CLUSTERS);
	h->snapshot_count = be32_get(fixed + QH_SNAPSHOT_COUNT);
	h->snapshot_offset = be64_get(fixed + QH_SNAPSHOT_OFFSET);
	if (h->version == 3) {
		h->incompatible = be64_get(fixed + QH_INCOMPATIBLE);
		h->compatible = be64_get(fixed + QH_COMPATIBLE);
		h->autoclear = be64_get(fixed + QH_AUTOCLEAR);
		h->refcount_order = be32_get(fixed + QH_REFCOUNT_ORDER);
		h->header_length = be32_get(fixed + QH_HEADER_LENGTH);
	} else {
		h->refcount_order = 4;
		h->header_length = QCOW2_V2_HEADER_LEN;
	}

	if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
	    h->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		FAIL("cluster size 2^%u is out of range (512 B to 2 MiB)",
		    h->cluster_bits);
	h->cluster_size = 1ULL << h->cluster_bits;
	if (h->crypt_method != 0)
		FAIL("encrypted images are not supported");
	if (h->version == 3 && (h->header_length < QCOW2_V3_HEADER_LEN ||
	    h->header_length > h->cluster_size || h->header_length % 8 != 0))
		FAIL("header length %u is invalid", h->header_length);
	if (h->incompatible & QCOW2_INCOMPAT_DATA_FILE)
		FAIL("external data files are not supported");
	if (h->incompatible & QCOW2_INCOMPAT_EXTL2)
		FAIL("extended L2 entries (subclusters) are not supported");
	unknown = h->incompatible & ~QCOW2_INCOMPAT_KNOWN;
	if (unknown)
		FAIL("unknown incompatible features 0x%llx",
		    (unsigned long long)unknown);
	if (h->header_length > QH_COMPRESSION_TYPE)
		h->compression_type = fixed[QH_COMPRESSION_TYPE];
	if (h->compression_type != 0)
		FAIL("compression type %u (zstd) is not supported, only zlib",
		    h->compression_type);
	if (h->refcount_order > 6)
		FAIL("refcount order %u is out of range", h->refcount_order);

	/* The rest of the header lives in the first cluster. */
	len = h->cluster_size;
	if ((cluster = malloc(len)) == NULL)
		FAIL("%s", strerror(errno));
	if (disk_pread_full(fd, cluster, len, 0, &got) == -1)
		FAIL("reading the header: %s", strerror(errno));
	if (h->backing_offset != 0 && h->backing_size != 0) {
		if (h->backing_size > QCOW2_BACKING_NAME_MAX ||
		    h->backing_offset > got ||
		    h->backing_size > got - h->backing_offset)
			FAIL("backing file name lies outside the header "
			    "cluster");
		memcpy(h->backing, cluster + h->backing_offset,
		    h->backing_size);
		h->backing[h->backing_size] = '\0';
		if (strlen(h->backing) != h->backing_size)
			FAIL("backing file name contains a NUL byte");
		h->has_backing = 1;
	}
	if (parse_extensions(cluster, got, h->header_length,
	    h->has_backing && h->backing_offset > h->header_length ?
	    h->backing_offset : got, h, name, err) == -1)
		goto fail;
	free(cluster);
	return 0;
fail:
	free(cluster);
	return -1;
}

int
qcow2_read_info(int fd, const char *name, struct qcow2_info *info, char *err)
{
	struct qcow2_header h;

	if (qcow2_parse_header(fd, name, &h, err) == -1)
		return -1;
	memset(info, 0, sizeof(*info));
	info->version = h.version;
	info->cluster_bits = h.cluster_bits;
	info->size = h.size;
	info->has_backing = h.has_backing;
	memcpy(info->backing, h.backing, sizeof(info->backing));
	info->backing_format = h.backing_format;
	return 0;
}

/*
 * A new image: header cluster, one refcount table cluster, one refcount
 * block, then the L1 table.  Version 3, 16-bit refcounts, zlib.
 */
int
qcow2_create_fd(int fd, const char *name, uint64_t size,
    uint32_t cluster_bits, const char *backing,
    enum disk_format backing_format, char *err)
{
	uint64_t cs = 1ULL << cluster_bits, l2_cover, l1_entries, l1_clusters;
	uint64_t meta_clusters, i;
	uint8_t *buf = NULL;
	size_t pos, blen = backing ? strlen(backing) : 0;
	const char *fmt = disk_format_name(backing_format);

	if (cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
	    cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		FAIL("cluster size 2^%u is out of range", cluster_bits);
	if (blen > QCOW2_BACKING_NAME_MAX)
		FAIL("backing file name longer than %d bytes",
		    QCOW2_BACKING_NAME_MAX);
	if (size > QCOW2_MAX_SIZE)
		FAIL("size %llu is too large for qcow2",
		    (unsigned long long)size);
	l2_cover = cs * (cs / 8);
	l1_entries = (size + l2_cover - 1) / l2_cover;
	l1_clusters = (l1_entries * 8 + cs - 1) / cs;
	if (l1_clusters == 0)
		l1_clusters = 1;
	meta_clusters = 3 + l1_clusters;
	if (meta_clusters > cs / 2 || l1_entries > QCOW2_MAX_L1_ENTRIES)
		FAIL("size %llu is too large for %llu-byte clusters",
		    (unsigned long long)size, (unsigned long long)cs);
	if ((buf = calloc(1, cs)) == NULL)
		FAIL("%s", strerror(errno));

	be32_put(buf + QH_MAGIC, QCOW2_MAGIC);
	be32_put(buf + QH_VERSION, 3);
	be32_put(buf + QH_CLUSTER_BITS, cluster_bits);
	be64_put(buf + QH_SIZE, size);
	be32_put(buf + QH_L1_SIZE, (uint32_t)l1_entries);
	be64_put(buf + QH_L1_OFFSET, 3 * cs);
	be64_put(buf + QH_REFTABLE_OFFSET, cs);
	be32_put(buf + QH_REFTABLE_CLUSTERS, 1);
	be32_put(buf + QH_REFCOUNT_ORDER, 4);
	be32_put(buf + QH_HEADER_LENGTH, 112);
	pos = 112;
	if (backing != NULL) {
		size_t flen = strlen(fmt);

		be32_put(buf + pos, QCOW2_EXT_BACKING_FORMAT);
		be32_put(buf + pos + 4, (uint32_t)flen);
		memcpy(buf + pos + 8, fmt, flen);
		pos += 8 + ((flen + 7) & ~(size_t)7);
	}
	pos += 8; /* end of extensions: type 0, length 0 */
	if (backing != NULL) {
		if (pos + blen > cs)
			FAIL("backing file name does not fit the header");
		memcpy(buf + pos, backing, blen);
		be64_put(buf + QH_BACKING_OFFSET, pos);
		be32_put(buf + QH_BACKING_SIZE, (uint32_t)blen);
	}
	if (disk_pwrite_full(fd, buf, cs, 0) == -1)
		goto ioerror;

	memset(buf, 0, cs); /* refcount table: block 0 at cluster 2 */
	be64_put(buf, 2 * cs);
	if (disk_pwrite_full(fd, buf, cs, cs) == -1)
		goto ioerror;
	memset(buf, 0, cs); /* refcount block 0: the metadata clusters */
	for (i = 0; i < meta_clusters; i++)
		be16_put(buf + 2 * i, 1);
	if (disk_pwrite_full(fd, buf, cs, 2 * cs) == -1)
		goto ioerror;
	if (ftruncate(fd, (off_t)(meta_clusters * cs)) == -1)
		goto ioerror;
	free(buf);
	return 0;
ioerror:
	disk_errorf(err, "disk %s: writing: %s", name,
	    strerror(errno));
fail:
	free(buf);
	return -1;
}
