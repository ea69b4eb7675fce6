/*
 * Disk images behind one small interface: raw files and qcow2 (v2 and v3,
 * backing chains, zero and compressed clusters).
 *
 * Opening is split in two so that the process that runs a VM never opens a
 * path: the parent (or vmctl) calls disk_open_chain(), which opens the image
 * and every backing file by path and returns their descriptors; whoever
 * holds the descriptors calls disk_from_chain() to build the disk.
 *
 * A struct disk is used by one thread at a time (the VM's I/O thread); it
 * keeps caches and has no locks.  Offsets and lengths are in bytes.
 */
#ifndef VMD_DISK_H
#define VMD_DISK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DISK_CHAIN_MAX 32   /* image plus backing files */
#define DISK_NAME_MAX  256  /* names are for messages only */
#define DISK_ERROR_MAX 512  /* size of every error buffer */

enum disk_format {
	DISK_FORMAT_AUTO = 0, /* probe the file's magic */
	DISK_FORMAT_RAW,
	DISK_FORMAT_QCOW2,
};

/* What a range of the disk holds, as disk_block_status() reports it. */
enum disk_status {
	DISK_STATUS_DATA = 1,
	DISK_STATUS_ZERO = 2, /* reads as zeros without touching data */
};

/* Where a range of the disk lies as-is in a file (disk_map). */
struct disk_mapping {
	int fd;
	uint64_t host; /* file offset of the range's first byte */
	uint64_t len;  /* how far the answer holds from the range's start */
};

/* One open layer of an image chain; layer 0 is the image itself. */
struct disk_layer {
	int fd;
	enum disk_format format;
	char name[DISK_NAME_MAX];
};

/* A chain of open files, as the parent hands it to a VM process. */
struct disk_chain {
	int count;
	int writable; /* layer 0 was opened for writing */
	struct disk_layer layer[DISK_CHAIN_MAX];
};

struct disk;

struct disk_ops {
	int (*read)(struct disk *, void *buf, size_t len, uint64_t offset);
	int (*write)(struct disk *, const void *buf, size_t len, uint64_t offset);
	int (*flush)(struct disk *);
	int (*discard)(struct disk *, uint64_t offset, uint64_t len);
	int (*block_status)(struct disk *, uint64_t offset, uint64_t len,
	    uint64_t *run);
	int (*map)(struct disk *, uint64_t offset, uint64_t len,
	    struct disk_mapping *);
	void (*close)(struct disk *);
};

struct disk {
	const struct disk_ops *ops;
	enum disk_format format;
	uint64_t size;	       /* virtual size in bytes */
	int writable;
	int fd;
	struct disk *backing;  /* owned; NULL at the bottom of a chain */
	char name[DISK_NAME_MAX];
	char error[DISK_ERROR_MAX]; /* why the last operation failed */
};

/* disk_open_chain() flags */
#define DISK_OPEN_WRITABLE   0x01 /* layer 0 for writing */
#define DISK_OPEN_NO_DEVICES 0x02 /* regular files only, no block devices */

/*
 * Opens path and its backing files, with the caller's file-system rights
 * (the parent takes on the VM owner's first: a backing file is opened with
 * the rights of whoever may open the image that names it).  Every layer
 * goes through safe_open(): regular files, and block devices unless
 * DISK_OPEN_NO_DEVICES; never blocking.  format DISK_FORMAT_AUTO probes.
 * Only layer 0 is opened for writing, and only with DISK_OPEN_WRITABLE.
 * Returns 0, or -1 with a message in err (DISK_ERROR_MAX bytes) and nothing
 * left open.
 */
int disk_open_chain(const char *path, enum disk_format format, int flags,
    struct disk_chain *chain, char *err);
void disk_chain_close(struct disk_chain *chain);

/*
 * Builds a disk from the descriptors of a chain, taking ownership of all of
 * them (also on failure).  Returns NULL with a message in err on failure.
 */
struct disk *disk_from_chain(struct disk_chain *chain, char *err);

/* disk_open_chain() and disk_from_chain() in one step. */
struct disk *disk_open(const char *path, enum disk_format format,
    int writable, char *err);

/*
 * I/O.  Each returns 0, or -1 with errno set and a message in disk->error.
 * Ranges past the virtual size are refused (EINVAL).
 */
int disk_read(struct disk *disk, void *buf, size_t len, uint64_t offset);
int disk_write(struct disk *disk, const void *buf, size_t len,
    uint64_t offset);
int disk_flush(struct disk *disk);
int disk_discard(struct disk *disk, uint64_t offset, uint64_t len);
/* Returns enum disk_status for offset; *run is how far that status holds. */
int disk_block_status(struct disk *disk, uint64_t offset, uint64_t len,
    uint64_t *run);
/*
 * Returns 1 when the first m->len bytes from offset lie unchanged in the
 * file m->fd from m->host on (a copy may take them from there), 0 when the
 * first m->len bytes must be read with disk_read, -1 on error.
 */
int disk_map(struct disk *disk, uint64_t offset, uint64_t len,
    struct disk_mapping *m);
void disk_close(struct disk *disk);

/* Copies src's content onto dst, a new disk at least as large. */
int disk_copy(struct disk *src, struct disk *dst, char *err);

/* Helpers shared by the backends, vmctl and the tests. */
const char *disk_format_name(enum disk_format format);
enum disk_format disk_format_parse(const char *name); /* AUTO if unknown */
enum disk_format disk_probe_fd(int fd);
void disk_errorf(char *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void disk_errorf_named(char *err, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void disk_seterror(struct disk *disk, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int disk_pread_full(int fd, void *buf, size_t len, uint64_t offset,
    size_t *got);
int disk_pwrite_full(int fd, const void *buf, size_t len, uint64_t offset);

/* Backends (disk_from_chain picks one). */
struct disk *raw_open_fd(int fd, const char *name, int writable, char *err);
struct disk *qcow2_open_fd(int fd, const char *name, int writable,
    struct disk *backing, char *err);

#endif
