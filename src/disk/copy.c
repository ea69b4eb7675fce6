/* Copying one disk's content into another (vmctl create -i). */
#include "disk/disk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
 * Copies src onto dst, which must be new (reading zeros) and at least as
 * large.  Returns 0, or -1 with the message in err.
 */
int
disk_copy(struct disk *src, struct disk *dst, char *err)
{
	uint64_t offset = 0, run;
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
		if (status == -1)
			goto src_error;
		if (run == 0 || run > len)
			run = len;
		if (status == DISK_STATUS_DATA) {
			if (disk_read(src, buf, run, offset) == -1)
				goto src_error;
			if (write_nonzero(dst, buf, run, offset) == -1) {
				disk_errorf(err, "%s", dst->error);
				goto fail;
			}
		}
		offset += run;
	}
	free(buf);
	/* the copy is complete only when its metadata is on disk */
	if (disk_flush(dst) == -1) {
		disk_errorf(err, "%s", dst->error);
		return -1;
	}
	return 0;
src_error:
	disk_errorf(err, "%s", src->error);
fail:
	free(buf);
	return -1;
}
