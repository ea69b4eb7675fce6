/*
 * The disk interface: opening image chains, dispatch to the backends, and
 * the raw backend.
 */
#include "disk/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/safe_open.h"
#include "disk/qcow2.h"

const char *
disk_format_name(enum disk_format format)
{
	switch (format) {
	case DISK_FORMAT_RAW:
		return "raw";
	case DISK_FORMAT_QCOW2:
		return "qcow2";
	default:
		return "auto";
	}
}

enum disk_format
disk_format_parse(const char *name)
{
	if (strcmp(name, "raw") == 0)
		return DISK_FORMAT_RAW;
	if (strcmp(name, "qcow2") == 0)
		return DISK_FORMAT_QCOW2;
	return DISK_FORMAT_AUTO;
}

enum disk_format
disk_probe_fd(int fd)
{
	uint8_t magic[4];
	size_t got;

	if (disk_pread_full(fd, magic, sizeof(magic), 0, &got) == 0 &&
	    got == sizeof(magic) && be32_get(magic) == QCOW2_MAGIC)
		return DISK_FORMAT_QCOW2;
	return DISK_FORMAT_RAW;
}

void
disk_errorf(char *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, DISK_ERROR_MAX, fmt, ap);
	va_end(ap);
}

void
disk_errorf_named(char *err, const char *name, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(err, DISK_ERROR_MAX, "disk %.*s: ", DISK_ERROR_MAX / 2,
	    name);
	if (n < 0 || n >= DISK_ERROR_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, (size_t)(DISK_ERROR_MAX - n), fmt, ap);
	va_end(ap);
}

void
disk_seterror(struct disk *disk, int errnum, const char *fmt, ...)
{
	size_t size = sizeof(disk->error), n;
	va_list ap;

	n = (size_t)snprintf(disk->error, size, "disk %.*s: ",
	    (int)(size / 2), disk->name);
	va_start(ap, fmt);
	vsnprintf(disk->error + n, size - n, fmt, ap);
	va_end(ap);
	n = strlen(disk->error);
	if (errnum && n < size)
		snprintf(disk->error + n, size - n, ": %s", strerror(errnum));
	errno = errnum ? errnum : EIO;
}

/*
 * Reads len bytes unless the file ends first; *got says how many arrived.
 * Only a real I/O error fails.
 */
int
disk_pread_full(int fd, void *buf, size_t len, uint64_t offset, size_t *got)
{
	uint8_t *p = buf;
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, p + done, len - done, (off_t)(offset + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

int
disk_pwrite_full(int fd, const void *buf, size_t len, uint64_t offset)
{
	const uint8_t *p = buf;
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pwrite(fd, p + done, len - done, (off_t)(offset + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = ENOSPC;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/* ---- dispatch ---------------------------------------------------------- */

static int
disk_check_range(struct disk *disk, uint64_t len, uint64_t offset)
{
	if (offset > disk->size || len > disk->size - offset) {
		disk_seterror(disk, EINVAL,
		    "access of %llu bytes at %llu beyond the size %llu",
		    (unsigned long long)len, (unsigned long long)offset,
		    (unsigned long long)disk->size);
		return -1;
	}
	return 0;
}

int
disk_read(struct disk *disk, void *buf, size_t len, uint64_t offset)
{
	if (disk_check_range(disk, len, offset) == -1)
		return -1;
	if (len == 0)
		return 0;
	return disk->ops->read(disk, buf, len, offset);
}

int
disk_write(struct disk *disk, const void *buf, size_t len, uint64_t offset)
{
	if (!disk->writable) {
		disk_seterror(disk, EROFS, "write");
		return -1;
	}
	if (disk_check_range(disk, len, offset) == -1)
		return -1;
	if (len == 0)
		return 0;
	return disk->ops->write(disk, buf, len, offset);
}

int
disk_flush(struct disk *disk)
{
	if (!disk->writable)
		return 0;
	return disk->ops->flush(disk);
}

int
disk_discard(struct disk *disk, uint64_t offset, uint64_t len)
{
	if (!disk->writable) {
		disk_seterror(disk, EROFS, "discard");
		return -1;
	}
	if (disk_check_range(disk, len, offset) == -1)
		return -1;
	if (len == 0)
		return 0;
	return disk->ops->discard(disk, offset, len);
}

int
disk_block_status(struct disk *disk, uint64_t offset, uint64_t len,
    uint64_t *run)
{
	if (disk_check_range(disk, len, offset) == -1)
		return -1;
	if (len == 0) {
		*run = 0;
		return DISK_STATUS_ZERO;
	}
	return disk->ops->block_status(disk, offset, len, run);
}

int
disk_map(struct disk *disk, uint64_t offset, uint64_t len,
    struct disk_mapping *m)
{
	m->fd = -1;
	m->len = len;
	if (disk_check_range(disk, len, offset) == -1)
		return -1;
	if (len == 0 || disk->ops->map == NULL)
		return 0;
	return disk->ops->map(disk, offset, len, m);
}

void
disk_close(struct disk *disk)
{
	struct disk *backing;

	while (disk != NULL) {
		backing = disk->backing;
		disk->ops->close(disk);
		disk = backing;
	}
}

/* ---- opening chains ---------------------------------------------------- */

/* Resolves a backing file name the way qemu-img stores it: relative to the
 * directory of the image that names it. */
static int
resolve_backing(const char *image, const char *backing, char *out, size_t len)
{
	const char *slash;
	int n;

	slash = strrchr(image, '/');
	if (backing[0] == '/' || slash == NULL)
		n = snprintf(out, len, "%s", backing);
	else
		n = snprintf(out, len, "%.*s/%s", (int)(slash - image), image,
		    backing);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static void
layer_set(struct disk_layer *layer, int fd, enum disk_format format,
    const char *path)
{
	size_t len = strlen(path);

	layer->fd = fd;
	layer->format = format;
	if (len >= sizeof(layer->name))
		len = sizeof(layer->name) - 1;
	memcpy(layer->name, path, len);
	layer->name[len] = '\0';
}

void
disk_chain_close(struct disk_chain *chain)
{
	for (int i = 0; i < chain->count; i++)
		if (chain->layer[i].fd != -1)
			close(chain->layer[i].fd);
	chain->count = 0;
}

int
disk_open_chain(const char *path, enum disk_format format, int flags,
    struct disk_chain *chain, char *err)
{
	static const int maxpath = PATH_MAX;
	char current[PATH_MAX], next[PATH_MAX];
	struct stat st[DISK_CHAIN_MAX];
	struct qcow2_info info;
	int fd, mode;

	unsigned kinds = SAFE_OPEN_REGULAR |
	    (flags & DISK_OPEN_NO_DEVICES ? 0 : SAFE_OPEN_BLOCK);
	char cause[SAFE_OPEN_CAUSE_MAX];
	int writable = flags & DISK_OPEN_WRITABLE;

	memset(chain, 0, sizeof(*chain));
	chain->writable = writable;
	if (snprintf(current, sizeof(current), "%s", path) >= maxpath) {
		disk_errorf(err, "disk %.64s...: name too long",
		    path);
		return -1;
	}
	for (;;) {
		int n = chain->count;

		/* Every layer by the same rule: the backing names inside an
		 * image are as untrusted as the image. */
		mode = n == 0 && writable ? O_RDWR : O_RDONLY;
		fd = safe_open(current, mode, kinds, cause, sizeof(cause));
		if (fd == -1) {
			if (n == 0)
				disk_errorf(err, "disk %s: %s", current, cause);
			else
				disk_errorf(err,
				    "disk %s: backing file %s: %s",
				    chain->layer[n - 1].name, info.backing,
				    cause);
			goto fail;
		}
		if (fstat(fd, &st[n]) == -1) {
			disk_errorf(err, "disk %s: %s", current,
			    strerror(errno));
			close(fd);
			goto fail;
		}
		for (int i = 0; i < n; i++) {
			if (st[i].st_dev == st[n].st_dev &&
			    st[i].st_ino == st[n].st_ino) {
				disk_errorf(err,
				    "disk %s: backing file %s: loop in the "
				    "backing chain (it is also %s)",
				    chain->layer[n - 1].name, info.backing,
				    chain->layer[i].name);
				close(fd);
				goto fail;
			}
		}
		if (format == DISK_FORMAT_AUTO)
			format = disk_probe_fd(fd);
		layer_set(&chain->layer[n], fd, format, current);
		chain->count++;
		if (format != DISK_FORMAT_QCOW2)
			return 0;
		if (qcow2_read_info(fd, current, &info, err) == -1)
			goto fail;
		if (!info.has_backing)
			return 0;
		if (chain->count == DISK_CHAIN_MAX) {
			disk_errorf(err,
			    "disk %s: backing chain longer than %d images",
			    path, DISK_CHAIN_MAX);
			goto fail;
		}
		if (resolve_backing(current, info.backing, next,
		    sizeof(next)) == -1) {
			disk_errorf(err,
			    "disk %s: backing file name too long", current);
			goto fail;
		}
		memcpy(current, next, sizeof(current));
		format = info.backing_format;
	}
fail:
	disk_chain_close(chain);
	return -1;
}

struct disk *
disk_from_chain(struct disk_chain *chain, char *err)
{
	struct disk *below = NULL, *disk = NULL;
	int i;

	if (chain->count < 1 || chain->count > DISK_CHAIN_MAX) {
		disk_errorf(err, "disk: empty image chain");
		disk_chain_close(chain);
		return NULL;
	}
	for (i = chain->count - 1; i >= 0; i--) {
		struct disk_layer *layer = &chain->layer[i];
		int writable = i == 0 && chain->writable;

		switch (layer->format) {
		case DISK_FORMAT_QCOW2:
			disk = qcow2_open_fd(layer->fd, layer->name, writable,
			    below, err);
			break;
		case DISK_FORMAT_RAW:
			if (below != NULL) {
				disk_errorf(err, "disk %s: a raw "
				    "image cannot have a backing file",
				    layer->name);
				disk = NULL;
				break;
			}
			disk = raw_open_fd(layer->fd, layer->name, writable,
			    err);
			break;
		default:
			disk_errorf(err, "disk %s: unknown format",
			    layer->name);
			disk = NULL;
			break;
		}
		if (disk == NULL)
			goto fail;
		layer->fd = -1; /* owned by the disk now */
		below = disk;
	}
	chain->count = 0;
	return disk;
fail:
	/* layers 0..i still own their descriptors (layer i's failed open did
	 * not take it); the disks built so far own theirs. */
	for (; i >= 0; i--) {
		if (chain->layer[i].fd != -1)
			close(chain->layer[i].fd);
		chain->layer[i].fd = -1;
	}
	chain->count = 0;
	disk_close(below);
	return NULL;
}

struct disk *
disk_open(const char *path, enum disk_format format, int writable, char *err)
{
	struct disk_chain chain;

	if (disk_open_chain(path, format,
	    writable ? DISK_OPEN_WRITABLE : 0, &chain, err) == -1)
		return NULL;
	return disk_from_chain(&chain, err);
}

/* ---- raw --------------------------------------------------------------- */

static int
raw_read(struct disk *disk, void *buf, size_t len, uint64_t offset)
{
	size_t got;

	if (disk_pread_full(disk->fd, buf, len, offset, &got) == -1) {
		disk_seterror(disk, errno, "read at %llu",
		    (unsigned long long)offset);
		return -1;
	}
	if (got < len) /* the file shrank under us: what is gone reads zero */
		memset((uint8_t *)buf + got, 0, len - got);
	return 0;
}

static int
raw_write(struct disk *disk, const void *buf, size_t len, uint64_t offset)
{
	if (disk_pwrite_full(disk->fd, buf, len, offset) == -1) {
		disk_seterror(disk, errno, "write at %llu",
		    (unsigned long long)offset);
		return -1;
	}
	return 0;
}

static int
raw_flush(struct disk *disk)
{
	if (fdatasync(disk->fd) == -1) {
		disk_seterror(disk, errno, "flush");
		return -1;
	}
	return 0;
}

static int
raw_discard(struct disk *disk, uint64_t offset, uint64_t len)
{
	/* Advisory: a file system without hole punching keeps the data. */
	if (fallocate(disk->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	    (off_t)offset, (off_t)len) == -1 && errno != EOPNOTSUPP &&
	    errno != ENOSYS) {
		disk_seterror(disk, errno, "discard at %llu",
		    (unsigned long long)offset);
		return -1;
	}
	return 0;
}

static int
raw_block_status(struct disk *disk, uint64_t offset, uint64_t len,
    uint64_t *run)
{
	off_t data, hole;

	data = lseek(disk->fd, (off_t)offset, SEEK_DATA);
	if (data == -1 && errno == ENXIO)
		data = (off_t)disk->size; /* only a hole up to the end */
	else if (data == -1)
		goto unknown;
	if ((uint64_t)data > offset) {
		*run = (uint64_t)data - offset;
		if (*run > len)
			*run = len;
		return DISK_STATUS_ZERO;
	}
	hole = lseek(disk->fd, (off_t)offset, SEEK_HOLE);
	if (hole == -1)
		goto unknown;
	*run = (uint64_t)hole > offset ? (uint64_t)hole - offset : len;
	if (*run > len)
		*run = len;
	return DISK_STATUS_DATA;
unknown:
	*run = len;
	return DISK_STATUS_DATA;
}

static int
raw_map(struct disk *disk, uint64_t offset, uint64_t len,
    struct disk_mapping *m)
{
	m->fd = disk->fd;
	m->host = offset;
	m->len = len;
	return 1;
}

static void
raw_close(struct disk *disk)
{
	close(disk->fd);
	free(disk);
}

static const struct disk_ops raw_ops = {
	.read = raw_read,
	.write = raw_write,
	.flush = raw_flush,
	.discard = raw_discard,
	.block_status = raw_block_status,
	.map = raw_map,
	.close = raw_close,
};

static int
fd_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		return -1;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, size);
	*size = (uint64_t)st.st_size;
	return 0;
}

struct disk *
raw_open_fd(int fd, const char *name, int writable, char *err)
{
	struct disk *disk;
	uint64_t size;

	if (fd_size(fd, &size) == -1) {
		disk_errorf(err, "disk %s: %s", name,
		    strerror(errno));
		return NULL;
	}
	if ((disk = calloc(1, sizeof(*disk))) == NULL) {
		disk_errorf(err, "disk %s: %s", name,
		    strerror(errno));
		return NULL;
	}
	disk->ops = &raw_ops;
	disk->format = DISK_FORMAT_RAW;
	disk->size = size;
	disk->writable = writable;
	disk->fd = fd;
	snprintf(disk->name, sizeof(disk->name), "%s", name);
	return disk;
}
