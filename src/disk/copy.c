/* Copying one disk's content into another (vmctl create -i). */
#include "disk/disk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_CHUNK (4ULL << 20)
#define COPY_GRAIN (64ULL << 10) /* zeros are skipped at this granularity */

static int
all_zero(const uint8_t *p, size_t len)
{
	/* one comparison against itself shifted by 16 bytes does the rest */
	static const uint8_t zero[16];

	if (len < 16)
		return memcmp(p, zero, len) == 0;
	return memcmp(p, zero, 16) == 0 && memcmp(p, p + 16, len - 16) == 0;
}

/* Writes the parts of buf that are not zero: dst reads zeros already. */
static int
write_nonzero(struct disk *dst, const uint8_t *buf, uint64_t len,
    uint64_t offset)
{
	uint64_t pos = 0;

	while (pos < len) {
		uint64_t start, grain;

		grain = COPY_GRAIN - ((offset + pos) & (COPY_GRAIN - 1));
		if (grain > len - pos)
			grain = len - pos;
		if (all_zero(buf + pos, grain)) {
			pos += grain;
			continue;
		}
		start = pos;
		pos += grain;
		while (pos < len) {
			grain = len - pos < COPY_GRAIN ? len - pos : COPY_GRAIN;
			if (all_zero(buf + pos, grain))
				break;
			pos += grain;
		}
		if (disk_write(dst, buf + start, pos - start,
		    offset + start) == -1)
			return -1;
	}
	return 0;
}

/*
 * Copies a range that lies as-is in a source file straight from that
 * file's pages: the kernel copies the data once (into dst) instead of twice
 * (out to a buffer, then into dst).  Returns 1, without copying, when the
 * range is not wholly inside the file (a short or hostile image reads zeros
 * there, which disk_read provides).
 */
static int
copy_mapped(struct disk *dst, const struct disk_mapping *m, uint64_t offset,
    struct disk **failed)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t start = m->host & ~(page - 1), skip = m->host - start;
	struct stat st;
	uint8_t *p;
	int rc;

	if (fstat(m->fd, &st) == -1 || m->host + m->len > (uint64_t)st.st_size)
		return 1;
	p = mmap(NULL, skip + m->len, PROT_READ, MAP_SHARED | MAP_POPULATE,
	    m->fd, (off_t)start);
	if (p == MAP_FAILED)
		return 1;
	rc = write_nonzero(dst, p + skip, m->len, offset);
	munmap(p, skip + m->len);
	if (rc == -1)
		*failed = dst;
	return rc;
}

/* Copies len bytes of data from offset; *failed names the disk at fault. */
static int
copy_data(struct disk *src, struct disk *dst, uint8_t *buf, uint64_t len,
    uint64_t offset, struct disk **failed)
{
	struct disk_mapping m;
	int rc;

	while (len > 0) {
		*failed = src;
		if ((rc = disk_map(src, offset, len, &m)) == -1)
			return -1;
		if (m.len == 0 || m.len > len)
			m.len = len;
		if (rc == 1 && (rc = copy_mapped(dst, &m, offset, failed)) <= 0) {
			if (rc == -1)
				return -1;
		} else {
			*failed = src;
			if (disk_read(src, buf, m.len, offset) == -1)
				return -1;
			*failed = dst;
			if (write_nonzero(dst, buf, m.len, offset) == -1)
				return -1;
		}
		offset += m.len;
		len -= m.len;
	}
	return 0;
}

/*
 * Copies src onto dst, which must be new (reading zeros) and at least as
 * large.  Returns 0, or -1 with the message in err.
 */
int
disk_copy(struct disk *src, struct disk *dst, char *err)
{
	uint64_t offset = 0, run;
	struct disk *failed = src;
	uint8_t *buf;
	int status;

	if (dst->size < src->size) {
		disk_errorf(err, "disk %s: smaller than %s", dst->name,
		    src->name);
		return -1;
	}
	if ((buf = malloc(COPY_CHUNK)) == NULL) {
		disk_errorf(err, "copying %s: %s", src->name, strerror(errno));
		return -1;
	}
	while (offset < src->size) {
		uint64_t len = src->size - offset;

		if (len > COPY_CHUNK)
			len = COPY_CHUNK;
		status = disk_block_status(src, offset, len, &run);
		failed = src;
		if (status == -1)
			goto fail;
		if (run == 0 || run > len)
			run = len;
		if (status == DISK_STATUS_DATA &&
		    copy_data(src, dst, buf, run, offset, &failed) == -1)
			goto fail;
		offset += run;
	}
	free(buf);
	/* the copy is complete only when its metadata is on disk */
	failed = dst;
	if (disk_flush(dst) == -1)
		goto fail_flushed;
	return 0;
fail:
	free(buf);
fail_flushed:
	disk_errorf(err, "%s", failed->error);
	return -1;
}
