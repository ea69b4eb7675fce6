/*
 * Unpacking a bzImage's compressed payload (the kernel's vmlinux.bin and its
 * relocation table) in vmd rather than in the guest's own decompressor.
 */
#ifndef VMD_UNPACK_H
#define VMD_UNPACK_H

#include <stddef.h>
#include <stdint.h>

/* The most a payload may unpack to: far above any x86-64 kernel (~60 MiB). */
#define UNPACK_MAX_SIZE (1ULL << 30)

/*
 * Receives the unpacked bytes in order, a piece at a time (each piece is
 * only valid during the call); returns -1 to stop the unpacking.
 */
typedef int unpack_sink(void *ctx, const uint8_t *data, size_t len);

/* The compression format of payload ("gzip", "xz", "lz4", "zstd"), NULL when not one we decode. */
const char *unpack_format(const uint8_t *payload, size_t len);
/*
 * The size payload unpacks to: the build appends it as a little-endian
 * 32-bit number (gzip's own trailer ends with it).  0 when there is none.
 */
size_t unpack_size(const uint8_t *payload, size_t len);
/*
 * Unpacks payload (in a format unpack_format knows) into sink.  Returns 0
 * when it unpacked to exactly unpack_size bytes, -1 with the reason in why
 * when the payload is corrupt or the sink stopped (its reason is its own).
 */
int unpack_payload(const uint8_t *payload, size_t len, unpack_sink *sink, void *ctx, char *why, size_t whylen);

#endif
