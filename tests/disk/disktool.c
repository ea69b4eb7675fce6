/*
 * Drives the disk engine for the disk tests and the benchmark.
 *
 *   disktool cat IMAGE OUT             whole guest content into the raw file OUT
 *   disktool open IMAGE [rw]           open, print the error if refused
 *   disktool write IMAGE OFF LEN BYTE  write LEN bytes of BYTE at OFF
 *   disktool discard IMAGE OFF LEN
 *   disktool stress IMAGE SHADOW SEED OPS   random writes and discards, mirrored
 *                                      into the raw file SHADOW, verified by reads
 *   disktool hammer IMAGE SEED         random writes until killed
 *   disktool bench IMAGE read|write COUNT STEP   4 KiB requests, like qemu-img bench
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "disk/disk.h"

static uint64_t rng_state;

static uint64_t
rng(void)
{
	/* xorshift64*: reproducible from the seed */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static struct disk *
open_or_die(const char *path, int writable)
{
	char err[DISK_ERROR_MAX];
	struct disk *disk = disk_open(path, DISK_FORMAT_AUTO, writable, err);

	if (disk == NULL) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	return disk;
}

static void
die_disk(struct disk *disk)
{
	fprintf(stderr, "%s\n", disk->error);
	exit(1);
}

static int
cmd_cat(const char *image, const char *out)
{
	struct disk *disk = open_or_die(image, 0);
	size_t chunk = 1 << 20;
	uint8_t *buf = malloc(chunk);
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd == -1 || buf == NULL || ftruncate(fd, (off_t)disk->size) == -1) {
		perror(out);
		return 1;
	}
	for (uint64_t off = 0; off < disk->size; off += chunk) {
		size_t len = disk->size - off < chunk ? disk->size - off : chunk;

		if (disk_read(disk, buf, len, off) == -1)
			die_disk(disk);
		if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len) {
			perror(out);
			return 1;
		}
	}
	close(fd);
	disk_close(disk);
	free(buf);
	return 0;
}

static int
cmd_open(const char *image, int writable)
{
	char err[DISK_ERROR_MAX];
	struct disk *disk = disk_open(image, DISK_FORMAT_AUTO, writable, err);

	if (disk == NULL) {
		printf("%s\n", err);
		return 1;
	}
	disk_close(disk);
	return 0;
}

static int
cmd_write(const char *image, uint64_t off, uint64_t len, int byte)
{
	struct disk *disk = open_or_die(image, 1);
	uint8_t *buf = malloc(len ? len : 1);

	memset(buf, byte, len);
	if (disk_write(disk, buf, len, off) == -1)
		die_disk(disk);
	disk_close(disk);
	free(buf);
	return 0;
}

static int
cmd_discard(const char *image, uint64_t off, uint64_t len)
{
	struct disk *disk = open_or_die(image, 1);

	if (disk_discard(disk, off, len) == -1)
		die_disk(disk);
	disk_close(disk);
	return 0;
}

/* A random request: mostly small and unaligned, sometimes large. */
static void
random_request(uint64_t size, uint64_t *off, uint64_t *len)
{
	uint64_t r = rng() % 10, max;

	max = r < 6 ? 8192 : r < 9 ? 200000 : 3 << 20;
	*len = 1 + rng() % max;
	if (rng() % 3 == 0) /* sector aligned, as a guest does it */
		*len = (*len + 511) & ~511ULL;
	if (*len > size)
		*len = size;
	*off = rng() % (size - *len + 1);
	if (rng() % 3 == 0)
		*off &= ~511ULL;
}

static int
cmd_stress(const char *image, const char *shadow_path, uint64_t seed,
    long ops)
{
	struct disk *disk = open_or_die(image, 1);
	int shadow = open(shadow_path, O_RDWR);
	size_t max = 4 << 20;
	uint8_t *buf = malloc(max), *check = malloc(max);

	rng_state = seed * 0x9e3779b97f4a7c15ULL + 1;
	if (shadow == -1 || buf == NULL || check == NULL) {
		perror(shadow_path);
		return 1;
	}
	for (long i = 0; i < ops; i++) {
		uint64_t off, len, kind = rng() % 20;

		random_request(disk->size, &off, &len);
		if (kind == 0 && disk->format == DISK_FORMAT_RAW)
			kind = 1;
		if (kind == 0) {
			/* Discard: afterwards the range reads zeros or the old
			 * data cluster by cluster; the shadow takes whatever
			 * the image now holds. */
			if (disk_discard(disk, off, len) == -1)
				die_disk(disk);
			if (disk_read(disk, buf, len, off) == -1)
				die_disk(disk);
			if (pwrite(shadow, buf, len, (off_t)off) != (ssize_t)len)
				return 1;
		} else if (kind < 14) {
			uint8_t fill = (uint8_t)rng();
			for (uint64_t k = 0; k < len; k++)
				buf[k] = (uint8_t)(fill + k * 7 + (k >> 9));
			if (disk_write(disk, buf, len, off) == -1)
				die_disk(disk);
			if (pwrite(shadow, buf, len, (off_t)off) != (ssize_t)len)
				return 1;
		} else {
			if (disk_read(disk, buf, len, off) == -1)
				die_disk(disk);
			if (pread(shadow, check, len, (off_t)off) != (ssize_t)len)
				return 1;
			if (memcmp(buf, check, len) != 0) {
				fprintf(stderr, "op %ld: read of %llu at %llu "
				    "differs from the shadow\n", i,
				    (unsigned long long)len,
				    (unsigned long long)off);
				return 1;
			}
		}
		if (rng() % 50 == 0 && disk_flush(disk) == -1)
			die_disk(disk);
	}
	disk_close(disk);
	close(shadow);
	free(buf);
	free(check);
	return 0;
}

static int
cmd_hammer(const char *image, uint64_t seed)
{
	struct disk *disk = open_or_die(image, 1);
	uint8_t *buf = malloc(4 << 20);

	rng_state = seed * 0x9e3779b97f4a7c15ULL + 1;
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		uint64_t off, len;

		random_request(disk->size, &off, &len);
		memset(buf, (int)(rng() | 1), len);
		if (rng() % 16 == 0) {
			if (disk_discard(disk, off, len) == -1)
				die_disk(disk);
		} else if (disk_write(disk, buf, len, off) == -1) {
			die_disk(disk);
		}
		/* as a guest does: a kill then loses only what came after */
		if (rng() % 8 == 0 && disk_flush(disk) == -1)
			die_disk(disk);
	}
	return 0;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The access pattern of qemu-img bench -s 4096 -S STEP: offsets advance by
 * STEP and wrap at the image size. */
static int
cmd_bench(const char *image, const char *mode, long count, uint64_t step)
{
	int writing = strcmp(mode, "write") == 0;
	struct disk *disk = open_or_die(image, writing);
	uint8_t buf[4096];
	uint64_t off = 0;
	double start;

	memset(buf, 0xa5, sizeof(buf));
	start = now();
	for (long i = 0; i < count; i++) {
		int rc = writing ? disk_write(disk, buf, sizeof(buf), off) :
		    disk_read(disk, buf, sizeof(buf), off);
		if (rc == -1)
			die_disk(disk);
		off += step;
		if (off + sizeof(buf) > disk->size)
			off %= disk->size;
		off &= ~4095ULL;
	}
	if (writing && disk_flush(disk) == -1)
		die_disk(disk);
	printf("%.6f\n", now() - start);
	disk_close(disk);
	return 0;
}

int
main(int argc, char *argv[])
{
	if (argc == 4 && strcmp(argv[1], "cat") == 0)
		return cmd_cat(argv[2], argv[3]);
	if ((argc == 3 || argc == 4) && strcmp(argv[1], "open") == 0)
		return cmd_open(argv[2], argc == 4 && strcmp(argv[3], "rw") == 0);
	if (argc == 6 && strcmp(argv[1], "write") == 0)
		return cmd_write(argv[2], strtoull(argv[3], NULL, 0),
		    strtoull(argv[4], NULL, 0), (int)strtol(argv[5], NULL, 0));
	if (argc == 5 && strcmp(argv[1], "discard") == 0)
		return cmd_discard(argv[2], strtoull(argv[3], NULL, 0),
		    strtoull(argv[4], NULL, 0));
	if (argc == 6 && strcmp(argv[1], "stress") == 0)
		return cmd_stress(argv[2], argv[3], strtoull(argv[4], NULL, 0),
		    strtol(argv[5], NULL, 0));
	if (argc == 4 && strcmp(argv[1], "hammer") == 0)
		return cmd_hammer(argv[2], strtoull(argv[3], NULL, 0));
	if (argc == 6 && strcmp(argv[1], "bench") == 0)
		return cmd_bench(argv[2], argv[3], strtol(argv[4], NULL, 0),
		    strtoull(argv[5], NULL, 0));
	fprintf(stderr, "usage: disktool cat|open|write|discard|stress|hammer|"
	    "bench ...\n");
	return 2;
}
