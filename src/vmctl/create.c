/*
 * vmctl create [-f] [-b base | -i input] [-s size] [raw:|qcow2:]disk
 *
 * Makes a new disk image: empty, a qcow2 overlay on a base image, or a
 * copy of an existing image (its backing chain flattened).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/size.h"
#include "disk/disk.h"
#include "disk/qcow2.h"
#include "vmctl/vmctl.h"

#define CREATE_CLUSTER_BITS 16 /* 64 KiB, as qemu-img makes them */

struct create_request {
	const char *path;     /* the file, without a format prefix */
	enum disk_format format;
	const char *base;     /* -b, stored in the image as given */
	const char *input;    /* -i */
	uint64_t size;	      /* 0 when not given */
	int force;	      /* -f: replace an existing file */
};

static int
create_usage(void)
{
	fprintf(stderr, "usage: vmctl create [-f] [-b base | -i input] "
	    "[-s size] [raw:|qcow2:]disk\n");
	return 1;
}

static int
has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The format from a prefix, else from the extension (.qcow2; anything
 * else, .img and .raw included, is raw). */
static void
target_parse(const char *arg, struct create_request *req)
{
	if (strncmp(arg, "qcow2:", 6) == 0) {
		req->format = DISK_FORMAT_QCOW2;
		req->path = arg + 6;
	} else if (strncmp(arg, "raw:", 4) == 0) {
		req->format = DISK_FORMAT_RAW;
		req->path = arg + 4;
	} else {
		req->path = arg;
		req->format = has_suffix(arg, ".qcow2") ? DISK_FORMAT_QCOW2 :
		    DISK_FORMAT_RAW;
	}
}

/* A backing file name is relative to the directory of the image. */
static int
base_resolve(const char *image, const char *base, char *out, size_t len)
{
	const char *slash = strrchr(image, '/');
	int n;

	if (base[0] == '/' || slash == NULL)
		n = snprintf(out, len, "%s", base);
	else
		n = snprintf(out, len, "%.*s/%s", (int)(slash - image), image,
		    base);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Refuses to write over a file of the chain we read from. */
static int
chain_contains(const struct disk_chain *chain, const char *path)
{
	struct stat target, st;

	if (stat(path, &target) == -1)
		return 0;
	for (int i = 0; i < chain->count; i++)
		if (fstat(chain->layer[i].fd, &st) == 0 &&
		    st.st_dev == target.st_dev && st.st_ino == target.st_ino)
			return 1;
	return 0;
}

static int
output_open(const struct create_request *req)
{
	int flags = O_RDWR | O_CREAT | O_CLOEXEC;
	struct stat st;
	int fd;

	flags |= req->force ? O_TRUNC : O_EXCL;
	if (req->force && stat(req->path, &st) == 0 && !S_ISREG(st.st_mode)) {
		fprintf(stderr, "vmctl: %s: not a regular file\n", req->path);
		return -1;
	}
	if ((fd = open(req->path, flags, 0644)) == -1) {
		if (errno == EEXIST)
			fprintf(stderr, "vmctl: %s: file exists (use -f to "
			    "replace it)\n", req->path);
		else
			fprintf(stderr, "vmctl: %s: %s\n", req->path,
			    strerror(errno));
	}
	return fd;
}

/* Writes an empty image of req->size into the new file fd. */
static int
output_format(int fd, const struct create_request *req, const char *base,
    enum disk_format base_format)
{
	char err[DISK_ERROR_MAX];

	if (req->format == DISK_FORMAT_QCOW2) {
		if (qcow2_create_fd(fd, req->path, req->size,
		    CREATE_CLUSTER_BITS, base, base_format, err) == -1) {
			fprintf(stderr, "vmctl: %s\n", err);
			return -1;
		}
		return 0;
	}
	if (ftruncate(fd, (off_t)req->size) == -1) {
		fprintf(stderr, "vmctl: %s: %s\n", req->path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
copy_input(const struct create_request *req, struct disk_chain *chain)
{
	char err[DISK_ERROR_MAX];
	struct disk *src, *dst;
	int rc;

	if ((src = disk_from_chain(chain, err)) == NULL) {
		fprintf(stderr, "vmctl: %s\n", err);
		return -1;
	}
	if ((dst = disk_open(req->path, req->format, 1, err)) == NULL) {
		fprintf(stderr, "vmctl: %s\n", err);
		disk_close(src);
		return -1;
	}
	if ((rc = disk_copy(src, dst, err)) == -1)
		fprintf(stderr, "vmctl: %s\n", err);
	disk_close(src);
	disk_close(dst);
	return rc;
}

/* Opens the base or input image chain and settles the size from it. */
static int
source_open(struct create_request *req, struct disk_chain *chain)
{
	char resolved[PATH_MAX], err[DISK_ERROR_MAX];
	const char *path = req->input;
	struct disk *probe;
	uint64_t size;

	if (req->base != NULL) {
		if (base_resolve(req->path, req->base, resolved,
		    sizeof(resolved)) == -1) {
			fprintf(stderr, "vmctl: %s: name too long\n", req->base);
			return -1;
		}
		path = resolved;
	}
	if (disk_open_chain(path, DISK_FORMAT_AUTO, 0, chain, err) == -1) {
		fprintf(stderr, "vmctl: %s\n", err);
		return -1;
	}
	if (chain_contains(chain, req->path)) {
		fprintf(stderr, "vmctl: %s: is %s or one of its backing "
		    "files\n", req->path, path);
		disk_chain_close(chain);
		return -1;
	}
	/* Parse every layer now, so that a broken chain is refused before
	 * anything is created.  disk_from_chain consumes a copy. */
	{
		struct disk_chain copy = *chain;

		for (int i = 0; i < copy.count; i++)
			if ((copy.layer[i].fd = dup(chain->layer[i].fd)) == -1) {
				fprintf(stderr, "vmctl: %s: %s\n", path,
				    strerror(errno));
				copy.count = i;
				disk_chain_close(&copy);
				disk_chain_close(chain);
				return -1;
			}
		if ((probe = disk_from_chain(&copy, err)) == NULL) {
			fprintf(stderr, "vmctl: %s\n", err);
			disk_chain_close(chain);
			return -1;
		}
		size = probe->size;
		disk_close(probe);
	}
	if (req->size == 0)
		req->size = size;
	else if (req->size < size) {
		fprintf(stderr, "vmctl: %s: size %" PRIu64 " is smaller than "
		    "%s (%" PRIu64 " bytes)\n", req->path, req->size, path,
		    size);
		disk_chain_close(chain);
		return -1;
	}
	return 0;
}

static int
create_image(struct create_request *req)
{
	struct disk_chain chain = { .count = 0 };
	int fd, rc = -1;

	if (req->base != NULL && req->format != DISK_FORMAT_QCOW2) {
		fprintf(stderr, "vmctl: %s: an image with a base must be "
		    "qcow2 (name it .qcow2 or write qcow2:%s)\n", req->path,
		    req->path);
		return -1;
	}
	if ((req->base != NULL || req->input != NULL) &&
	    source_open(req, &chain) == -1)
		return -1;
	if (req->size == 0 && req->base == NULL && req->input == NULL) {
		fprintf(stderr, "vmctl: %s: missing size (-s)\n", req->path);
		return -1;
	}
	/* qemu-img counts in 512-byte sectors; so do we. */
	req->size = (req->size + 511) & ~(uint64_t)511;
	if ((fd = output_open(req)) == -1)
		goto out;
	rc = output_format(fd, req, req->base,
	    req->base != NULL ? chain.layer[0].format : DISK_FORMAT_AUTO);
	close(fd);
	if (rc == 0 && req->input != NULL)
		rc = copy_input(req, &chain); /* consumes the chain */
	if (rc == -1)
		unlink(req->path);
out:
	disk_chain_close(&chain);
	if (rc == 0)
		printf("vmctl: %s: %s image created, %" PRIu64 " bytes\n",
		    req->path, disk_format_name(req->format), req->size);
	return rc;
}

int
cmd_create(int argc, char *argv[])
{
	struct create_request req = { .format = DISK_FORMAT_AUTO };
	int ch;

	optind = 1;
	while ((ch = getopt(argc, argv, "b:fi:s:")) != -1) {
		switch (ch) {
		case 'b':
			req.base = optarg;
			break;
		case 'f':
			req.force = 1;
			break;
		case 'i':
			req.input = optarg;
			break;
		case 's':
			if (size_parse(optarg, 1ULL << 20, &req.size) == -1 ||
			    req.size == 0) {
				fprintf(stderr, "vmctl: invalid size: %s\n",
				    optarg);
				return 1;
			}
			break;
		default:
			return create_usage();
		}
	}
	if (argc - optind != 1 || (req.base != NULL && req.input != NULL))
		return create_usage();
	target_parse(argv[optind], &req);
	if (req.path[0] == '\0')
		return create_usage();
	return create_image(&req) == 0 ? 0 : 1;
}
