/*
 * Power-loss simulation for the qcow2 engine.
 *
 *   crashsim DIR CLUSTER_BITS SEED OPS [snapshot]
 *
 * Makes DIR/img.qcow2 over a raw backing file, runs OPS random guest writes,
 * discards and flushes through the engine and records every change the
 * engine makes to the image file (pwrite, pwritev, ftruncate, fallocate:
 * linked with -Wl,--wrap) and every fdatasync.  Then it rebuilds the file
 * as a power cut could have left it: everything before the k-th fdatasync,
 * plus the writes issued after it except one (for each one in turn, and
 * also none).  Dropping one write keeps every write that depends on it, so
 * a write that should have waited for a fdatasync shows up.  Each such
 * image must pass `qemu-img check` with at most leaked clusters, and read
 * (through the engine) as the content of the last flush that completed,
 * each byte possibly replaced by what a later guest request wrote there.
 * With "snapshot", half the disk is written and an internal snapshot taken
 * (qemu-img snapshot -c) first, so that the writes copy shared tables and
 * clusters.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "disk/disk.h"
#include "disk/qcow2.h"

#define SIZE	  (1ULL << 20) /* guest size */
#define BASE_FILL 0xee	       /* the backing file's bytes */
#define SNAPSHOT_FILL 0xf0     /* what the snapshot holds */
#define OPS_MAX	  200	       /* fills 1..OPS_MAX tell requests apart */

enum record_kind { REC_WRITE, REC_TRUNCATE, REC_PUNCH, REC_SYNC };

struct record {
	enum record_kind kind;
	uint64_t offset, len;
	uint8_t *data; /* REC_WRITE */
};

enum guest_kind { GUEST_WRITE, GUEST_DISCARD, GUEST_FLUSH };

struct guest_op {
	enum guest_kind kind;
	uint64_t offset, len;
	uint8_t fill;
	size_t syncs_done; /* GUEST_FLUSH: fdatasyncs when it returned */
	uint8_t *content;  /* GUEST_FLUSH: guest content it made durable */
};

/* The whole state of the tool: the trace and what the guest did. */
static struct sim {
	int traced_fd;
	struct record *rec;
	size_t nrec, caprec, nsync;
	struct guest_op op[OPS_MAX + 1];
	int nop;
	uint8_t *initial; /* the image file before the run */
	size_t initial_len;
	uint8_t *start;	  /* the guest's content before the run */
	const char *dir;
	uint64_t rng;
} sim = { .traced_fd = -1 };

static void
die(const char *what)
{
	perror(what);
	exit(2);
}

static uint64_t
rng(void)
{
	sim.rng ^= sim.rng >> 12;
	sim.rng ^= sim.rng << 25;
	sim.rng ^= sim.rng >> 27;
	return sim.rng * 2685821657736338717ULL;
}

/* ---- recording --------------------------------------------------------- */

static struct record *
record_new(enum record_kind kind, uint64_t offset, uint64_t len)
{
	struct record *r;

	if (sim.nrec == sim.caprec) {
		sim.caprec = sim.caprec ? sim.caprec * 2 : 256;
		sim.rec = reallocarray(sim.rec, sim.caprec, sizeof(*sim.rec));
		if (sim.rec == NULL)
			die("trace");
	}
	r = &sim.rec[sim.nrec++];
	*r = (struct record){ kind, offset, len, NULL };
	if (kind == REC_WRITE && (r->data = malloc(len ? len : 1)) == NULL)
		die("trace");
	if (kind == REC_SYNC)
		sim.nsync++;
	return r;
}

ssize_t __real_pwrite(int, const void *, size_t, off_t);
ssize_t __real_pwritev(int, const struct iovec *, int, off_t);
int __real_fdatasync(int);
int __real_ftruncate(int, off_t);
int __real_fallocate(int, int, off_t, off_t);

ssize_t
__wrap_pwrite(int fd, const void *buf, size_t len, off_t offset)
{
	ssize_t n = __real_pwrite(fd, buf, len, offset);

	if (fd == sim.traced_fd && n > 0)
		memcpy(record_new(REC_WRITE, (uint64_t)offset,
		    (uint64_t)n)->data, buf, (size_t)n);
	return n;
}

ssize_t
__wrap_pwritev(int fd, const struct iovec *iov, int count, off_t offset)
{
	ssize_t n = __real_pwritev(fd, iov, count, offset);
	struct record *r;
	size_t done = 0;

	if (fd != sim.traced_fd || n <= 0)
		return n;
	r = record_new(REC_WRITE, (uint64_t)offset, (uint64_t)n);
	for (int i = 0; i < count && done < (size_t)n; i++) {
		size_t part = iov[i].iov_len;

		if (part > (size_t)n - done)
			part = (size_t)n - done;
		memcpy(r->data + done, iov[i].iov_base, part);
		done += part;
	}
	return n;
}

int
__wrap_fdatasync(int fd)
{
	int rc = __real_fdatasync(fd);

	if (fd == sim.traced_fd && rc == 0)
		record_new(REC_SYNC, 0, 0);
	return rc;
}

int
__wrap_ftruncate(int fd, off_t len)
{
	int rc = __real_ftruncate(fd, len);

	if (fd == sim.traced_fd && rc == 0)
		record_new(REC_TRUNCATE, (uint64_t)len, 0);
	return rc;
}

int
__wrap_fallocate(int fd, int mode, off_t offset, off_t len)
{
	int rc = __real_fallocate(fd, mode, offset, len);

	if (fd == sim.traced_fd && rc == 0)
		record_new(REC_PUNCH, (uint64_t)offset, (uint64_t)len);
	return rc;
}

/* ---- the guest's run --------------------------------------------------- */

static void
make_files(unsigned cluster_bits, char *image)
{
	char path[4096], err[DISK_ERROR_MAX];
	uint8_t *base = malloc(SIZE);
	int fd;

	snprintf(path, sizeof(path), "%s/base.raw", sim.dir);
	memset(base, BASE_FILL, SIZE);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1 ||
	    write(fd, base, SIZE) != (ssize_t)SIZE)
		die(path);
	close(fd);
	free(base);
	snprintf(image, 4096, "%s/img.qcow2", sim.dir);
	if ((fd = open(image, O_RDWR | O_CREAT | O_TRUNC, 0644)) == -1)
		die(image);
	if (qcow2_create_fd(fd, image, SIZE, cluster_bits, "base.raw",
	    DISK_FORMAT_RAW, err) == -1) {
		fprintf(stderr, "%s\n", err);
		exit(2);
	}
	close(fd);
	if ((sim.start = malloc(SIZE)) == NULL)
		die("start");
	memset(sim.start, BASE_FILL, SIZE);
}

/* Half the disk written, then a snapshot that shares it. */
static void
take_snapshot(const char *image)
{
	char err[DISK_ERROR_MAX], cmd[8192];
	struct disk *disk = disk_open(image, DISK_FORMAT_QCOW2, 1, err);

	if (disk == NULL) {
		fprintf(stderr, "%s\n", err);
		exit(2);
	}
	memset(sim.start, SNAPSHOT_FILL, SIZE / 2);
	if (disk_write(disk, sim.start, SIZE / 2, 0) == -1) {
		fprintf(stderr, "%s\n", disk->error);
		exit(2);
	}
	disk_close(disk);
	snprintf(cmd, sizeof(cmd), "qemu-img snapshot -c s1 '%s'", image);
	if (system(cmd) != 0) {
		fprintf(stderr, "crashsim: %s failed\n", cmd);
		exit(2);
	}
}

static void
read_initial(const char *image)
{
	struct stat st;
	int fd;

	if ((fd = open(image, O_RDONLY)) == -1 || fstat(fd, &st) == -1 ||
	    (sim.initial = malloc((size_t)st.st_size)) == NULL)
		die(image);
	if (pread(fd, sim.initial, (size_t)st.st_size, 0) != st.st_size)
		die(image);
	sim.initial_len = (size_t)st.st_size;
	close(fd);
}

static void
random_range(uint64_t *offset, uint64_t *len)
{
	*len = 1 + rng() % (rng() % 4 == 0 ? 200000 : 6000);
	*offset = rng() % (SIZE - *len + 1);
}

/* One guest request; the shadow follows what the guest must see. */
static void
guest_step(struct disk *disk, uint8_t *shadow, int i)
{
	struct guest_op *op = &sim.op[sim.nop++];
	uint64_t r = rng() % 10;
	uint8_t *buf;

	random_range(&op->offset, &op->len);
	op->fill = (uint8_t)(i + 1);
	op->kind = r < 7 ? GUEST_WRITE : r < 8 ? GUEST_DISCARD : GUEST_FLUSH;
	if (op->kind == GUEST_FLUSH) {
		if (disk_flush(disk) == -1)
			goto fail;
		op->syncs_done = sim.nsync;
		if ((op->content = malloc(SIZE)) == NULL)
			die("flush");
		memcpy(op->content, shadow, SIZE);
		return;
	}
	if (op->kind == GUEST_DISCARD) {
		/* whole clusters read zeros afterwards, the rest is kept */
		if (disk_discard(disk, op->offset, op->len) == -1 ||
		    disk_read(disk, shadow + op->offset, op->len,
		    op->offset) == -1)
			goto fail;
		return;
	}
	if ((buf = malloc(op->len)) == NULL)
		die("write");
	memset(buf, op->fill, op->len);
	if (disk_write(disk, buf, op->len, op->offset) == -1)
		goto fail;
	memset(shadow + op->offset, op->fill, op->len);
	free(buf);
	return;
fail:
	fprintf(stderr, "%s\n", disk->error);
	exit(2);
}

static void
guest_run(const char *image, int ops)
{
	char err[DISK_ERROR_MAX];
	uint8_t *shadow = malloc(SIZE);
	struct disk *disk = disk_open(image, DISK_FORMAT_QCOW2, 1, err);

	if (disk == NULL) {
		fprintf(stderr, "%s\n", err);
		exit(2);
	}
	memcpy(shadow, sim.start, SIZE);
	sim.traced_fd = disk->fd;
	for (int i = 0; i < ops; i++)
		guest_step(disk, shadow, i);
	disk_close(disk); /* close syncs: a last flush */
	sim.traced_fd = -1;
	sim.op[sim.nop] = (struct guest_op){ .kind = GUEST_FLUSH,
	    .syncs_done = sim.nsync, .content = shadow };
	sim.nop++;
}

/* ---- crash states ------------------------------------------------------ */

struct file {
	uint8_t *data;
	size_t len, cap;
};

static void
file_resize(struct file *f, size_t len)
{
	if (len > f->cap) {
		f->cap = len * 2;
		if ((f->data = realloc(f->data, f->cap)) == NULL)
			die("replay");
	}
	if (len > f->len)
		memset(f->data + f->len, 0, len - f->len);
	f->len = len;
}

static void
file_apply(struct file *f, const struct record *r)
{
	switch (r->kind) {
	case REC_WRITE:
		if (r->offset + r->len > f->len)
			file_resize(f, r->offset + r->len);
		memcpy(f->data + r->offset, r->data, r->len);
		break;
	case REC_TRUNCATE:
		file_resize(f, r->offset);
		break;
	case REC_PUNCH:
		if (r->offset < f->len)
			memset(f->data + r->offset, 0, (r->offset + r->len >
			    f->len ? f->len : r->offset + r->len) - r->offset);
		break;
	case REC_SYNC:
		break;
	}
}

/* The file after the records before stop, except the one at drop. */
static void
file_build(struct file *f, size_t stop, size_t drop, const char *path)
{
	int fd;

	f->len = 0;
	file_resize(f, sim.initial_len);
	memcpy(f->data, sim.initial, sim.initial_len);
	for (size_t i = 0; i < stop; i++)
		if (i != drop)
			file_apply(f, &sim.rec[i]);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1 ||
	    write(fd, f->data, f->len) != (ssize_t)f->len)
		die(path);
	close(fd);
}

/* The guest flush that is durable once syncs fdatasyncs are done. */
static const struct guest_op *
durable_flush(size_t syncs, int *after)
{
	static struct guest_op none = { .kind = GUEST_FLUSH };
	int last = -1;

	for (int i = 0; i < sim.nop; i++)
		if (sim.op[i].kind == GUEST_FLUSH &&
		    sim.op[i].syncs_done <= syncs)
			last = i;
	*after = last + 1;
	if (last >= 0)
		return &sim.op[last];
	none.content = sim.start;
	return &none;
}

/* Whether a request from op "after" on may have left value at byte b. */
static int
later_value(int after, uint64_t b, uint8_t value)
{
	for (int i = after; i < sim.nop; i++) {
		const struct guest_op *op = &sim.op[i];

		if (op->kind == GUEST_FLUSH || b < op->offset ||
		    b >= op->offset + op->len)
			continue;
		if (op->kind == GUEST_WRITE ? value == op->fill : value == 0)
			return 1;
	}
	return 0;
}

static int
check_content(const char *path, size_t syncs, const char *state)
{
	char err[DISK_ERROR_MAX];
	struct disk *disk = disk_open(path, DISK_FORMAT_QCOW2, 0, err);
	uint8_t *got = malloc(SIZE);
	const struct guest_op *flush;
	int after, bad = 0;

	if (disk == NULL || disk_read(disk, got, SIZE, 0) == -1) {
		printf("%s: unreadable: %s\n", state, disk ? disk->error : err);
		free(got);
		if (disk)
			disk_close(disk);
		return -1;
	}
	disk_close(disk);
	flush = durable_flush(syncs, &after);
	for (uint64_t b = 0; b < SIZE && !bad; b++)
		if (got[b] != flush->content[b] && !later_value(after, b,
		    got[b])) {
			printf("%s: guest byte %llu reads 0x%02x, neither the "
			    "flushed 0x%02x nor a later write\n", state,
			    (unsigned long long)b, got[b], flush->content[b]);
			bad = 1;
		}
	free(got);
	return bad ? -1 : 0;
}

static int
check_image(const char *path, const char *state)
{
	char cmd[8192];
	int rc;

	snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s' >/dev/null 2>&1",
	    path);
	rc = system(cmd);
	if (rc == -1 || !WIFEXITED(rc))
		die("qemu-img");
	/* 0: clean, 3: leaked clusters only */
	if (WEXITSTATUS(rc) == 0 || WEXITSTATUS(rc) == 3)
		return 0;
	printf("%s: qemu-img check exits %d:\n", state, WEXITSTATUS(rc));
	fflush(stdout);
	snprintf(cmd, sizeof(cmd), "qemu-img check '%s' 2>&1 | head -20", path);
	(void)system(cmd);
	return -1;
}

/* Every crash state: epoch k's writes (after k fdatasyncs), one left out. */
static int
simulate(void)
{
	char path[4096], state[128];
	struct file f = { NULL, 0, 0 };
	size_t start = 0, syncs = 0, states = 0;
	int failed = 0;

	snprintf(path, sizeof(path), "%s/crash.qcow2", sim.dir);
	while (start <= sim.nrec && !failed) {
		size_t end = start;

		while (end < sim.nrec && sim.rec[end].kind != REC_SYNC)
			end++;
		for (size_t drop = start; drop <= end && !failed; drop++) {
			/* drop == end: nothing left out */
			snprintf(state, sizeof(state), "after sync %zu, "
			    "record %zu of %zu left out", syncs, drop, end);
			file_build(&f, end, drop, path);
			states++;
			if (check_image(path, state) == -1 ||
			    check_content(path, syncs, state) == -1)
				failed = 1;
		}
		start = end + 1;
		syncs++;
	}
	printf("%zu records, %zu fdatasyncs, %zu crash states: %s\n", sim.nrec,
	    sim.nsync, states, failed ? "FAILED" : "all consistent");
	free(f.data);
	return failed;
}

int
main(int argc, char *argv[])
{
	char image[4096];
	int ops;

	if (argc != 5 && !(argc == 6 && strcmp(argv[5], "snapshot") == 0)) {
		fprintf(stderr, "usage: crashsim DIR CLUSTER_BITS SEED OPS "
		    "[snapshot]\n");
		return 2;
	}
	sim.dir = argv[1];
	sim.rng = strtoull(argv[3], NULL, 0) * 0x9e3779b97f4a7c15ULL + 1;
	ops = atoi(argv[4]);
	if (ops < 1 || ops > OPS_MAX) {
		fprintf(stderr, "crashsim: OPS is 1 to %d\n", OPS_MAX);
		return 2;
	}
	make_files((unsigned)atoi(argv[2]), image);
	if (argc == 6)
		take_snapshot(image);
	read_initial(image);
	guest_run(image, ops);
	return simulate();
}
