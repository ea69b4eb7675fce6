/*
 * Opening a file a VM will use, safely: as the user whose file it is, only
 * if it is a regular file (or a block device, where allowed), and never
 * blocking.  The parent and vmctl both open images this way.
 */
#ifndef VMD_SAFE_OPEN_H
#define VMD_SAFE_OPEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Kinds of file safe_open() accepts. */
#define SAFE_OPEN_REGULAR 0x01
#define SAFE_OPEN_BLOCK	  0x02 /* block devices: only for VMs root configured */

#define SAFE_OPEN_CAUSE_MAX 128
#define SAFE_OPEN_GROUPS_MAX 64
#define SAFE_OPEN_NOBODY 65534 /* "nobody" and "nogroup" where the databases lack them */

/*
 * Opens path with flags (O_CLOEXEC is added) without blocking: O_NONBLOCK
 * and O_NOCTTY while it opens, then fstat, then O_NONBLOCK cleared.  A file
 * not of the kinds given is refused.  Returns the descriptor, or -1 with
 * errno set and the cause in cause ("a FIFO, not a regular file", or
 * strerror's text), which the caller prefixes with what and the path.
 */
int safe_open(const char *path, int flags, unsigned kinds, char *cause, size_t causelen);

/* The rights files are opened with: a file-system uid, gid and groups. */
struct open_identity {
	uid_t uid;
	gid_t gid;
	gid_t groups[SAFE_OPEN_GROUPS_MAX];
	int ngroups;
};

/* root: opens are not changed. */
void identity_root(struct open_identity *id);
/*
 * A user: uid with the primary group and supplementary groups of its
 * passwd entry; a uid without one gets gid fallback_gid and no others.
 */
void identity_user(struct open_identity *id, uid_t uid, gid_t fallback_gid);
/* A group with no user: the file-system uid of "nobody" with only that group. */
void identity_group(struct open_identity *id, gid_t gid);

/* What identity_enter() replaced, for identity_leave(). */
struct open_saved {
	bool changed;
	gid_t groups[SAFE_OPEN_GROUPS_MAX];
	int ngroups;
};

/*
 * Takes on id's file-system rights for the opens that follow (setgroups,
 * setfsgid, setfsuid: the calling process must be single-threaded and
 * root, with CAP_SETUID and CAP_SETGID).  A non-root fsuid also loses
 * CAP_DAC_OVERRIDE and the other file-system capabilities.  Returns 0, or
 * -1 with errno set and root's rights kept.  identity_leave() restores
 * them; every successful enter needs one.
 */
int identity_enter(const struct open_identity *id, struct open_saved *saved);
void identity_leave(struct open_saved *saved);

/*
 * Locks: only a process that may write an image can keep a VM from using
 * it.  A writer takes an OFD write lock on its writable descriptor (it
 * lasts as long as any copy of that open file).  A reader takes none; but
 * a reader can take a read lock (F_RDLCK needs only read access), which
 * blocks a write lock: such a lock is ignored (WRITE_LOCK_READERS), the
 * image used without one.  Only another write lock refuses.
 */
enum write_lock {
	WRITE_LOCK_TAKEN,
	WRITE_LOCK_READERS, /* only read locks in the way: not locked, usable */
	WRITE_LOCK_IN_USE,  /* another writer holds a write lock */
	WRITE_LOCK_ERROR,   /* errno says why */
};

enum write_lock write_lock_take(int fd);

#endif
