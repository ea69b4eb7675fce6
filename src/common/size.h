#ifndef VMD_SIZE_H
#define VMD_SIZE_H

#include <stdint.h>

/*
 * Parses a size such as "512M", "4.5G", "1T" or "65536" into bytes.  A bare
 * number is counted in units of `unit` bytes (vmctl: megabytes).  Suffixes
 * K, M, G, T (either case) are powers of 1024; fractions
 * are allowed (not of a single byte) and rounded down to a byte.  Returns -1 on malformed input or
 * overflow.
 */
int size_parse(const char *text, uint64_t unit, uint64_t *bytes);

#endif
