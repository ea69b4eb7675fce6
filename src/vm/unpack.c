/*
 * Unpacking a bzImage's payload in vmd.  The kernel's build compresses
 * vmlinux.bin (plus its relocation table) with one of several compressors
 * and appends the unpacked size as a little-endian 32-bit number (gzip's own
 * trailer already ends with it).  We decode the four formats distributions
 * use (Debian: xz and, for the cloud kernel, lz4; Ubuntu: zstd; older ones:
 * gzip) with their libraries; the rest (bzip2, lzma, lzo) are left to the
 * guest's decompressor.  Every length is checked: the file is untrusted.
 */
#include <limits.h>
#include <lz4.h>
#include <lzma.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "common/le.h"
#include "vm/unpack.h"

#define LZ4_LEGACY_MAGIC 0x184c2102u
#define LZ4_LEGACY_BLOCK (8u << 20) /* the most one block of the legacy format unpacks to */
#define WINDOW_SIZE	 (1u << 20) /* the other formats unpack a MiB at a time */
#define XZ_MEMORY_LIMIT	 (256u << 20) /* the kernel's xz uses a 32 MiB dictionary */

/* One unpacking: the sink and a window that each piece is unpacked into, then handed over. */
struct job {
	unpack_sink *sink;
	void *ctx;
	uint8_t *window;
	size_t window_size;
	size_t done; /* bytes handed to the sink */
	bool sink_stopped;
};

typedef int decoder(const uint8_t *in, size_t len, struct job *job);

static int
hand_over(struct job *job, size_t len)
{
	if (len == 0)
		return 0;
	job->done += len;
	if (job->sink(job->ctx, job->window, len) < 0) {
		job->sink_stopped = true;
		return -1;
	}
	return 0;
}

static int
decode_gzip(const uint8_t *in, size_t len, struct job *job)
{
	z_stream z = { .next_in = (Bytef *)in, .avail_in = (uInt)len };
	int rc = Z_OK;

	if (len > UINT_MAX || inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return -1;
	while (rc == Z_OK) {
		z.next_out = job->window;
		z.avail_out = (uInt)job->window_size;
		rc = inflate(&z, Z_NO_FLUSH);
		if ((rc == Z_OK || rc == Z_STREAM_END) && hand_over(job, job->window_size - z.avail_out) < 0)
			rc = Z_DATA_ERROR;
		if (rc == Z_OK && z.avail_out == job->window_size) /* no progress: the input ended early */
			rc = Z_BUF_ERROR;
	}
	inflateEnd(&z);
	return rc == Z_STREAM_END ? 0 : -1;
}

static int
decode_xz(const uint8_t *in, size_t len, struct job *job)
{
	lzma_stream x = LZMA_STREAM_INIT;
	lzma_ret rc;

	if (lzma_stream_decoder(&x, XZ_MEMORY_LIMIT, 0) != LZMA_OK)
		return -1;
	x.next_in = in;
	x.avail_in = len;
	do {
		x.next_out = job->window;
		x.avail_out = job->window_size;
		rc = lzma_code(&x, LZMA_FINISH);
		if ((rc == LZMA_OK || rc == LZMA_STREAM_END) && hand_over(job, job->window_size - x.avail_out) < 0)
			rc = LZMA_DATA_ERROR;
	} while (rc == LZMA_OK);
	lzma_end(&x);
	return rc == LZMA_STREAM_END ? 0 : -1;
}

/* The legacy lz4 format (lz4 -l): a magic number, then blocks, each after its compressed size. */
static int
decode_lz4(const uint8_t *in, size_t len, struct job *job)
{
	size_t pos = 4;

	while (pos < len) {
		uint32_t block;
		int n;

		if (len - pos < 4)
			return -1;
		block = le_get32(in + pos);
		pos += 4;
		if (block == LZ4_LEGACY_MAGIC) /* another stream follows: lz4 concatenates */
			continue;
		if (block > len - pos || block > INT_MAX)
			return -1;
		n = LZ4_decompress_safe((const char *)in + pos, (char *)job->window, (int)block, (int)job->window_size);
		if (n < 0 || hand_over(job, (size_t)n) < 0)
			return -1;
		pos += block;
	}
	return 0;
}

static int
decode_zstd(const uint8_t *in, size_t len, struct job *job)
{
	ZSTD_DCtx *z = ZSTD_createDCtx();
	ZSTD_inBuffer input = { in, len, 0 };
	size_t rc = 1;

	if (z == NULL)
		return -1;
	/* rc is 0 once a frame is complete; the payload is one frame (or several, back to back). */
	while (input.pos < input.size || rc != 0) {
		ZSTD_outBuffer output = { job->window, job->window_size, 0 };

		rc = ZSTD_decompressStream(z, &output, &input);
		if (ZSTD_isError(rc) || hand_over(job, output.pos) < 0 ||
		    (output.pos == 0 && input.pos == input.size && rc != 0)) {
			rc = 1;
			break;
		}
	}
	ZSTD_freeDCtx(z);
	return rc == 0 ? 0 : -1;
}

struct format {
	const char *name;
	uint8_t magic[6];
	size_t magic_len;
	bool size_in_stream; /* gzip's trailer is the size; the others have it appended */
	size_t window_size;
	decoder *decode;
};

static const struct format formats[] = {
	{ "gzip", { 0x1f, 0x8b }, 2, true, WINDOW_SIZE, decode_gzip },
	{ "xz", { 0xfd, '7', 'z', 'X', 'Z', 0x00 }, 6, false, WINDOW_SIZE, decode_xz },
	{ "lz4", { 0x02, 0x21, 0x4c, 0x18 }, 4, false, LZ4_LEGACY_BLOCK, decode_lz4 },
	{ "zstd", { 0x28, 0xb5, 0x2f, 0xfd }, 4, false, WINDOW_SIZE, decode_zstd },
};

static const struct format *
find_format(const uint8_t *payload, size_t len)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (len >= formats[i].magic_len + 4 && memcmp(payload, formats[i].magic, formats[i].magic_len) == 0)
			return &formats[i];
	return NULL;
}

const char *
unpack_format(const uint8_t *payload, size_t len)
{
	const struct format *f = find_format(payload, len);

	return f ? f->name : NULL;
}

size_t
unpack_size(const uint8_t *payload, size_t len)
{
	return len >= 4 ? le_get32(payload + len - 4) : 0;
}

int
unpack_payload(const uint8_t *payload, size_t len, unpack_sink *sink, void *ctx, char *why, size_t whylen)
{
	const struct format *f = find_format(payload, len);
	size_t size = unpack_size(payload, len);
	struct job job = { sink, ctx, NULL, 0, 0, false };
	int rc;

	if (f == NULL || size == 0 || size > UNPACK_MAX_SIZE) {
		snprintf(why, whylen, "its payload claims to unpack to %zu bytes", size);
		return -1;
	}
	job.window_size = f->window_size;
	if ((job.window = malloc(job.window_size)) == NULL) {
		snprintf(why, whylen, "no memory to unpack it");
		return -1;
	}
	rc = f->decode(payload, f->size_in_stream ? len : len - 4, &job);
	free(job.window);
	if (job.sink_stopped)
		return -1;
	if (rc < 0 || job.done != size) {
		snprintf(why, whylen, "its %s payload is corrupt (unpacked %zu of %zu bytes)", f->name, job.done, size);
		return -1;
	}
	return 0;
}
