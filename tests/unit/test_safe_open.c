/*
 * safe_open()'s kind rule and write_lock_take(), without root (the rights
 * part runs as root with a real user in tests/security/native-open).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/safe_open.h"
#include "unit/check.h"

static char dir[] = "/tmp/vmd-safe-open.XXXXXX";

static const char *
at(const char *name)
{
	static char buf[2][256];
	static int next;
	char *p = buf[next++ % 2];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static bool
refused_with(const char *path, int flags, unsigned kinds, const char *want)
{
	char cause[SAFE_OPEN_CAUSE_MAX] = "";
	int fd = safe_open(path, flags, kinds, cause, sizeof(cause));

	if (fd >= 0) {
		close(fd);
		return false;
	}
	return strstr(cause, want) != NULL;
}

static void
safe_open_refuses_what_is_not_a_file(void)
{
	CHECK(mkfifo(at("fifo"), 0600) == 0);
	CHECK(refused_with(at("fifo"), O_RDONLY, SAFE_OPEN_REGULAR, "a FIFO, not a regular file"));
	CHECK(refused_with(at("fifo"), O_RDWR, SAFE_OPEN_REGULAR | SAFE_OPEN_BLOCK, "a FIFO, not a regular file"));
	CHECK(refused_with("/dev/null", O_RDONLY, SAFE_OPEN_REGULAR | SAFE_OPEN_BLOCK,
			   "a character device, not a regular file"));
	CHECK(refused_with(dir, O_RDONLY, SAFE_OPEN_REGULAR, "a directory, not a regular file"));
	CHECK(refused_with(dir, O_RDWR, SAFE_OPEN_REGULAR, "a directory, not a regular file"));
	CHECK(refused_with(at("missing"), O_RDONLY, SAFE_OPEN_REGULAR, "No such file"));
}

static void
safe_open_gives_a_blocking_descriptor_of_a_regular_file(void)
{
	char cause[SAFE_OPEN_CAUSE_MAX] = "";
	int fd = open(at("file"), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0);
	close(fd);
	fd = safe_open(at("file"), O_RDWR, SAFE_OPEN_REGULAR, cause, sizeof(cause));
	CHECK(fd >= 0);
	CHECK(!(fcntl(fd, F_GETFL) & O_NONBLOCK));
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
}

static void
write_lock_refuses_only_writers(void)
{
	struct flock rd = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
	int first = open(at("file"), O_RDWR), second = open(at("file"), O_RDWR), reader;

	CHECK(write_lock_take(first) == WRITE_LOCK_TAKEN);
	CHECK(write_lock_take(second) == WRITE_LOCK_IN_USE);
	close(first);
	CHECK(write_lock_take(second) == WRITE_LOCK_TAKEN);
	close(second);
	reader = open(at("file"), O_RDONLY);
	CHECK(fcntl(reader, F_OFD_SETLK, &rd) == 0);
	first = open(at("file"), O_RDWR);
	CHECK(write_lock_take(first) == WRITE_LOCK_READERS);
	close(first);
	close(reader);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	RUN_TEST(safe_open_refuses_what_is_not_a_file);
	RUN_TEST(safe_open_gives_a_blocking_descriptor_of_a_regular_file);
	RUN_TEST(write_lock_refuses_only_writers);
	unlink(at("fifo"));
	unlink(at("file"));
	rmdir(dir);
	TEST_EXIT();
}
