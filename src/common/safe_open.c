/*
 * The opening rule (safe_open.h): as the file's user, regular files (and
 * block devices where allowed) only, never blocking.
 */
#include "common/safe_open.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *
kind_name(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFIFO:
		return "a FIFO";
	case S_IFSOCK:
		return "a socket";
	case S_IFCHR:
		return "a character device";
	case S_IFDIR:
		return "a directory";
	case S_IFBLK:
		return "a block device";
	case S_IFLNK:
		return "a symbolic link";
	default:
		return "a special file";
	}
}

static bool
kind_allowed(mode_t mode, unsigned kinds)
{
	return (S_ISREG(mode) && (kinds & SAFE_OPEN_REGULAR)) || (S_ISBLK(mode) && (kinds & SAFE_OPEN_BLOCK));
}

static void
refuse_kind(mode_t mode, char *cause, size_t causelen)
{
	snprintf(cause, causelen, "%s, not a regular file%s", kind_name(mode),
		 S_ISBLK(mode) ? " (block devices only for VMs that root configured)" : "");
}

/*
 * Some kinds fail open() itself (a socket: ENXIO; a directory opened for
 * writing: EISDIR; a FIFO opened write-only without a reader: ENXIO): say
 * what the file is rather than strerror's riddle.  The stat is only for the
 * message; nothing was opened.
 */
static void
explain_failed_open(const char *path, int saved, unsigned kinds, char *cause, size_t causelen)
{
	struct stat st;

	if ((saved == ENXIO || saved == EISDIR || saved == ENODEV || saved == EOPNOTSUPP) &&
	    stat(path, &st) == 0 && !kind_allowed(st.st_mode, kinds))
		refuse_kind(st.st_mode, cause, causelen);
	else
		snprintf(cause, causelen, "%s", strerror(saved));
	errno = saved;
}

int
safe_open(const char *path, int flags, unsigned kinds, char *cause, size_t causelen)
{
	struct stat st;
	int fd, fl;

	fd = open(path, flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		explain_failed_open(path, errno, kinds, cause, causelen);
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(cause, causelen, "%s", strerror(errno));
		goto fail;
	}
	if (!kind_allowed(st.st_mode, kinds)) {
		refuse_kind(st.st_mode, cause, causelen);
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		goto fail;
	}
	/* Regular files and block devices ignore O_NONBLOCK; cleared anyway, for what comes. */
	if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		snprintf(cause, causelen, "%s", strerror(errno));
		goto fail;
	}
	return fd;
fail: {
	int saved = errno;

	close(fd);
	errno = saved;
	return -1;
}
}

void
identity_root(struct open_identity *id)
{
	*id = (struct open_identity){ .uid = 0, .gid = 0, .ngroups = 0 };
}

void
identity_user(struct open_identity *id, uid_t uid, gid_t fallback_gid)
{
	struct passwd *pw = getpwuid(uid);
	int n = SAFE_OPEN_GROUPS_MAX;

	id->uid = uid;
	id->gid = pw != NULL ? pw->pw_gid : fallback_gid;
	/* More groups than fit: the first ones (getgrouplist fills what fits); fewer rights, never more. */
	if (pw == NULL)
		n = 0;
	else if (getgrouplist(pw->pw_name, id->gid, id->groups, &n) < 0)
		n = SAFE_OPEN_GROUPS_MAX;
	if (n <= 0) {
		id->groups[0] = id->gid;
		n = 1;
	}
	id->ngroups = n;
}

void
identity_group(struct open_identity *id, gid_t gid)
{
	struct passwd *pw = getpwnam("nobody");

	id->uid = pw != NULL ? pw->pw_uid : SAFE_OPEN_NOBODY;
	id->gid = gid;
	id->groups[0] = gid;
	id->ngroups = 1;
}

int
identity_enter(const struct open_identity *id, struct open_saved *saved)
{
	saved->changed = false;
	if (id->uid == 0 && id->gid == 0 && id->ngroups == 0)
		return 0;
	if ((saved->ngroups = getgroups(SAFE_OPEN_GROUPS_MAX, saved->groups)) < 0)
		return -1;
	if (setgroups((size_t)id->ngroups, id->groups) < 0)
		return -1;
	saved->changed = true;
	setfsgid(id->gid);
	setfsuid(id->uid);
	/* setfsuid() reports no error: a call with an invalid id returns the current ones. */
	if ((uid_t)setfsuid((uid_t)-1) != id->uid || (gid_t)setfsgid((gid_t)-1) != id->gid) {
		identity_leave(saved);
		errno = EPERM;
		return -1;
	}
	return 0;
}

void
identity_leave(struct open_saved *saved)
{
	if (!saved->changed)
		return;
	setfsuid(0); /* first: it gives back the file-system capabilities */
	setfsgid(0);
	setgroups((size_t)saved->ngroups, saved->groups);
	saved->changed = false;
}

enum write_lock
write_lock_take(int fd)
{
	struct flock lock = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	struct flock probe = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };

	if (fcntl(fd, F_OFD_SETLK, &lock) == 0)
		return WRITE_LOCK_TAKEN;
	if (errno != EAGAIN && errno != EACCES)
		return WRITE_LOCK_ERROR;
	/* What is in the way: a read probe conflicts with write locks only. */
	if (fcntl(fd, F_OFD_GETLK, &probe) < 0)
		return WRITE_LOCK_ERROR;
	return probe.l_type == F_UNLCK ? WRITE_LOCK_READERS : WRITE_LOCK_IN_USE;
}
