/*
 * The opening rule, natively (tests/security/native-open builds and runs
 * this as root): safe_open() refuses what is not a regular file without
 * blocking, identity_enter() gives a user's rights and only hers, backing
 * files are opened with them, and only writers' locks refuse a writer.
 *
 * usage: open-check DIR UID GID
 *   DIR  an empty directory (0755) to make the files in
 *   UID  an unprivileged user, a member of GID
 *   GID  a group that is not the user's primary group
 * Prints ok NAME / FAIL NAME: why; exits 1 on a failure.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/safe_open.h"
#include "disk/disk.h"

static int failures;
static const char *dir;
static uid_t user_uid;
static gid_t extra_gid;

static void
result(const char *name, bool good, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
result(const char *name, bool good, const char *fmt, ...)
{
	va_list ap;

	if (good) {
		printf("ok open-%s\n", name);
		return;
	}
	failures++;
	printf("FAIL open-%s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static const char *
at(const char *name)
{
	static char buf[4][512];
	static int next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
make_file(const char *name, mode_t mode, uid_t uid, gid_t gid, const char *content)
{
	int fd = open(at(name), O_WRONLY | O_CREAT | O_TRUNC, mode);

	if (fd < 0 || write(fd, content, strlen(content)) < 0 || fchown(fd, uid, gid) < 0 ||
	    fchmod(fd, mode) < 0) {
		perror(at(name));
		exit(2);
	}
	close(fd);
}

/* safe_open of path must fail, quickly, with want in the cause. */
static void
expect_refused(const char *name, const char *path, int flags, unsigned kinds, const char *want)
{
	char cause[SAFE_OPEN_CAUSE_MAX] = "";
	double start = now();
	int fd = safe_open(path, flags, kinds, cause, sizeof(cause));
	double took = now() - start;

	if (fd >= 0)
		close(fd);
	result(name, fd < 0 && strstr(cause, want) != NULL && took < 1.0,
	       "%s: fd %d after %.2f s, cause \"%s\", want \"%s\"", path, fd, took, cause, want);
}

static void
kinds_refused(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int s;

	if (mkfifo(at("fifo"), 0666) < 0) {
		perror("mkfifo");
		exit(2);
	}
	expect_refused("fifo-read", at("fifo"), O_RDONLY, SAFE_OPEN_REGULAR, "a FIFO, not a regular file");
	expect_refused("fifo-readwrite", at("fifo"), O_RDWR, SAFE_OPEN_REGULAR | SAFE_OPEN_BLOCK,
		       "a FIFO, not a regular file");
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", at("sock"));
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(s, 1) < 0) {
		perror("socket");
		exit(2);
	}
	expect_refused("socket", at("sock"), O_RDONLY, SAFE_OPEN_REGULAR, "a socket, not a regular file");
	close(s);
	expect_refused("chardev-zero", "/dev/zero", O_RDONLY, SAFE_OPEN_REGULAR | SAFE_OPEN_BLOCK,
		       "a character device, not a regular file");
	expect_refused("chardev-tty", "/dev/tty", O_RDWR, SAFE_OPEN_REGULAR, "a character device, not a regular file");
	expect_refused("directory-read", dir, O_RDONLY, SAFE_OPEN_REGULAR, "a directory, not a regular file");
	expect_refused("directory-write", dir, O_RDWR, SAFE_OPEN_REGULAR, "a directory, not a regular file");
}

static void
regular_and_block(void)
{
	char cause[SAFE_OPEN_CAUSE_MAX] = "";
	const char *blk = "/dev/loop0";
	struct stat st;
	int fd, fl;

	make_file("plain", 0644, 0, 0, "plain\n");
	fd = safe_open(at("plain"), O_RDWR, SAFE_OPEN_REGULAR, cause, sizeof(cause));
	fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
	result("regular", fd >= 0 && fl >= 0 && !(fl & O_NONBLOCK) && (fcntl(fd, F_GETFD) & FD_CLOEXEC),
	       "fd %d flags %#x: %s", fd, fl, cause);
	if (fd >= 0)
		close(fd);
	if (stat(blk, &st) < 0 || !S_ISBLK(st.st_mode)) {
		printf("ok open-block-device # skipped: no %s\n", blk);
		return;
	}
	expect_refused("block-refused", blk, O_RDONLY, SAFE_OPEN_REGULAR, "a block device, not a regular file");
	fd = safe_open(blk, O_RDONLY, SAFE_OPEN_REGULAR | SAFE_OPEN_BLOCK, cause, sizeof(cause));
	result("block-allowed", fd >= 0, "%s with SAFE_OPEN_BLOCK: %s", blk, cause);
	if (fd >= 0)
		close(fd);
	if (symlink(blk, at("blk-link")) < 0 || lchown(at("blk-link"), user_uid, (gid_t)-1) < 0) {
		perror("symlink");
		exit(2);
	}
}

/* Opens path as id; the cause of a failure in cause. */
static int
open_as(const struct open_identity *id, const char *path, char *cause)
{
	struct open_saved saved;
	int fd;

	if (identity_enter(id, &saved) < 0) {
		snprintf(cause, SAFE_OPEN_CAUSE_MAX, "identity_enter: %s", strerror(errno));
		return -1;
	}
	fd = safe_open(path, O_RDONLY, SAFE_OPEN_REGULAR, cause, SAFE_OPEN_CAUSE_MAX);
	identity_leave(&saved);
	return fd;
}

static bool
is_root_again(const gid_t *groups, int ngroups)
{
	gid_t now_groups[SAFE_OPEN_GROUPS_MAX];
	int n = getgroups(SAFE_OPEN_GROUPS_MAX, now_groups);

	return setfsuid((uid_t)-1) == 0 && setfsgid((gid_t)-1) == 0 && n == ngroups &&
	       memcmp(groups, now_groups, sizeof(gid_t) * (size_t)n) == 0;
}

static void
identities(void)
{
	char cause[SAFE_OPEN_CAUSE_MAX] = "";
	gid_t groups[SAFE_OPEN_GROUPS_MAX];
	int ngroups = getgroups(SAFE_OPEN_GROUPS_MAX, groups);
	struct open_identity user, group;
	int fd;

	identity_user(&user, user_uid, SAFE_OPEN_NOBODY);
	identity_group(&group, extra_gid);
	make_file("secret", 0600, 0, 0, "SECRET\n");
	make_file("mine", 0600, user_uid, user.gid, "mine\n");
	make_file("grouped", 0640, 0, extra_gid, "grouped\n");

	fd = open_as(&user, at("secret"), cause);
	result("user-root-only-refused", fd < 0 && strstr(cause, "Permission denied"), "fd %d: %s", fd, cause);
	result("user-rights-restored", is_root_again(groups, ngroups), "fsuid/fsgid/groups not root's after");
	fd = open_as(&user, at("mine"), cause);
	result("user-own-file", fd >= 0, "%s", cause);
	if (fd >= 0)
		close(fd);
	fd = open_as(&user, at("grouped"), cause);
	result("user-supplementary-group", fd >= 0, "a 0640 file of the user's group %u: %s",
	       (unsigned)extra_gid, cause);
	if (fd >= 0)
		close(fd);
	fd = open_as(&group, at("grouped"), cause);
	result("group-owner-reads-group-file", fd >= 0, "%s", cause);
	if (fd >= 0)
		close(fd);
	fd = open_as(&group, at("mine"), cause);
	result("group-owner-not-the-user", fd < 0, "the group identity opened a 0600 file of uid %u",
	       (unsigned)user_uid);
	if (fd >= 0)
		close(fd);
	if (symlink(at("secret"), at("link")) < 0 || lchown(at("link"), user_uid, (gid_t)-1) < 0) {
		perror("symlink");
		exit(2);
	}
	fd = open_as(&user, at("link"), cause);
	result("user-symlink-to-root-only", fd < 0 && strstr(cause, "Permission denied"), "fd %d: %s", fd, cause);
	fd = open_as(&user, at("fifo"), cause);
	result("user-fifo", fd < 0 && strstr(cause, "a FIFO"), "fd %d: %s", fd, cause);
	result("rights-restored-at-the-end", is_root_again(groups, ngroups), "fsuid/fsgid/groups not root's");
}

static void
run(const char *name, const char *command)
{
	if (system(command) != 0) {
		result(name, false, "%s failed", command);
		exit(1);
	}
}

/* disk_open_chain as id; the message of a failure in err. */
static int
chain_as(const struct open_identity *id, const char *path, int flags, char *err)
{
	struct open_saved saved;
	struct disk_chain chain;
	int rc;

	if (identity_enter(id, &saved) < 0) {
		snprintf(err, DISK_ERROR_MAX, "identity_enter: %s", strerror(errno));
		return -1;
	}
	rc = disk_open_chain(path, DISK_FORMAT_AUTO, flags, &chain, err);
	identity_leave(&saved);
	if (rc == 0) {
		rc = chain.count;
		disk_chain_close(&chain);
	}
	return rc;
}

static void
backing_files(void)
{
	struct open_identity user, root;
	char err[DISK_ERROR_MAX] = "", cmd[2048];
	double start;
	int rc;

	identity_user(&user, user_uid, SAFE_OPEN_NOBODY);
	identity_root(&root);
	/* The attack as she makes it: her own image, its backing name pointed at root's file. */
	snprintf(cmd, sizeof(cmd),
		 "cd %s && qemu-img create -q -f qcow2 a.qcow2 1M && qemu-img rebase -q -u -F raw -b %s a.qcow2 && "
		 "chown %u a.qcow2",
		 dir, at("secret"), (unsigned)user_uid);
	run("backing-setup", cmd);
	rc = chain_as(&user, at("a.qcow2"), DISK_OPEN_WRITABLE | DISK_OPEN_NO_DEVICES, err);
	result("backing-root-only-refused", rc < 0 && strstr(err, "backing file") && strstr(err, "Permission denied"),
	       "rc %d: %s", rc, err);
	rc = chain_as(&root, at("a.qcow2"), DISK_OPEN_WRITABLE, err);
	result("backing-root-opens-it", rc == 2, "rc %d: %s", rc, err);
	snprintf(cmd, sizeof(cmd), "cd %s && qemu-img rebase -q -u -F raw -b mine a.qcow2", dir);
	run("backing-setup-own", cmd);
	rc = chain_as(&user, at("a.qcow2"), DISK_OPEN_WRITABLE | DISK_OPEN_NO_DEVICES, err);
	result("backing-own-file", rc == 2, "rc %d: %s", rc, err);
	snprintf(cmd, sizeof(cmd), "cd %s && qemu-img rebase -q -u -F raw -b fifo a.qcow2", dir);
	run("backing-setup-fifo", cmd);
	start = now();
	rc = chain_as(&root, at("a.qcow2"), 0, err);
	result("backing-fifo-refused", rc < 0 && strstr(err, "backing file") && strstr(err, "a FIFO") && now() - start < 1,
	       "rc %d: %s", rc, err);
	if (access(at("blk-link"), F_OK) == 0) {
		rc = chain_as(&root, at("blk-link"), DISK_OPEN_NO_DEVICES, err);
		result("symlink-to-block-device", rc < 0 && strstr(err, "a block device"), "rc %d: %s", rc, err);
		rc = chain_as(&user, at("blk-link"), DISK_OPEN_WRITABLE | DISK_OPEN_NO_DEVICES, err);
		result("user-symlink-to-block-device", rc < 0, "rc %d: %s", rc, err);
	}
}

/* Each open() is an open file description of its own, as another process's would be. */
static int
open_or_die(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0) {
		perror(path);
		exit(2);
	}
	return fd;
}

static void
locks(void)
{
	struct flock rd = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
	int reader, writer, second;
	enum write_lock got;

	make_file("image", 0644, 0, 0, "image\n");
	/* The old attack: a reader's flock kept the owner's VM from starting. */
	reader = open_or_die(at("image"), O_RDONLY);
	flock(reader, LOCK_EX | LOCK_NB);
	writer = open_or_die(at("image"), O_RDWR);
	got = write_lock_take(writer);
	result("lock-reader-flock-ignored", got == WRITE_LOCK_TAKEN, "write_lock_take gave %d", got);
	second = open_or_die(at("image"), O_RDWR);
	got = write_lock_take(second);
	result("lock-second-writer-refused", got == WRITE_LOCK_IN_USE, "write_lock_take gave %d", got);
	close(second);
	close(writer);
	close(reader);
	/* A reader's read lock blocks a write lock: it must not refuse the writer. */
	reader = open_or_die(at("image"), O_RDONLY);
	if (fcntl(reader, F_OFD_SETLK, &rd) < 0) {
		perror("F_OFD_SETLK");
		exit(2);
	}
	writer = open_or_die(at("image"), O_RDWR);
	got = write_lock_take(writer);
	result("lock-reader-read-lock-ignored", got == WRITE_LOCK_READERS, "write_lock_take gave %d", got);
	close(writer);
	close(reader);
}

int
main(int argc, char *argv[])
{
	if (argc != 4) {
		fprintf(stderr, "usage: open-check DIR UID GID\n");
		return 2;
	}
	dir = argv[1];
	user_uid = (uid_t)strtoul(argv[2], NULL, 10);
	extra_gid = (gid_t)strtoul(argv[3], NULL, 10);
	alarm(60); /* a blocking open would hang here: the alarm fails the run */
	kinds_refused();
	regular_and_block();
	identities();
	backing_files();
	locks();
	return failures ? 1 : 0;
}
