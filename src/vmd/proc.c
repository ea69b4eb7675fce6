/*
 * Re-executed children.  The parent forks and executes its own binary as
 * `vmd -X name [-d] [-v...]` with the socket back to it on fd 3, so that each
 * child starts from a clean image.  Children that run as _vmd drop their
 * privileges first thing; control and the VM processes also lose the file
 * system (a chroot to an empty directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/log.h"
#include "vmd/vmd.h"

int
proc_lookup_user(uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam(VMD_USER);

	if (pw == NULL)
		return -1;
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

/* Moves fd to want (closing whatever was there), keeping it across exec. */
static void
proc_place_fd(int fd, int want)
{
	if (dup2(fd, want) < 0)
		_exit(127);
}

pid_t
proc_spawn(const char *name, int exe_fd, int sock, int extra_fd, int debug, int verbose)
{
	char *argv[8];
	int argc = 0;
	pid_t pid;

	pid = fork();
	if (pid != 0)
		return pid;
	/* The child: fd 3 the socket, fd 4 the extra descriptor, then exec. */
	sock = fcntl(sock, F_DUPFD_CLOEXEC, 10);
	exe_fd = fcntl(exe_fd, F_DUPFD_CLOEXEC, 10);
	if (extra_fd >= 0)
		extra_fd = fcntl(extra_fd, F_DUPFD_CLOEXEC, 10);
	if (sock < 0 || exe_fd < 0)
		_exit(127);
	proc_place_fd(sock, VMD_CHILD_FD);
	if (extra_fd >= 0)
		proc_place_fd(extra_fd, VMD_EXE_FD);
	argv[argc++] = "vmd";
	argv[argc++] = "-X";
	argv[argc++] = (char *)name;
	if (debug)
		argv[argc++] = "-d";
	if (verbose > 1)
		argv[argc++] = "-vv";
	else if (verbose)
		argv[argc++] = "-v";
	argv[argc] = NULL;
	fexecve(exe_fd, argv, environ);
	fprintf(stderr, "vmd: cannot execute the %s process: %s\n", name, strerror(errno));
	_exit(127);
}

/*
 * A chroot needs CAP_SYS_CHROOT: root has it; a process that is already
 * _vmd gets it inside a user namespace of its own, which changes nothing
 * else it may do (its descriptors came from the parent).
 */
int
proc_sandbox_chroot(void)
{
	if (geteuid() != 0 && unshare(CLONE_NEWUSER) < 0)
		return -1;
	if (chroot(VMD_EMPTY_DIR) < 0 || chdir("/") < 0)
		return -1;
	return 0;
}

void
proc_drop_privileges(const char *procname, bool do_chroot)
{
	uid_t uid = 0;
	gid_t gid = 0;

	if (geteuid() == 0 && proc_lookup_user(&uid, &gid) < 0)
		fatalx("%s: no user %s", procname, VMD_USER);
	if (do_chroot && proc_sandbox_chroot() < 0)
		fatal("%s: chroot %s", procname, VMD_EMPTY_DIR);
	if (geteuid() == 0) {
		if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, uid, uid) < 0)
			fatal("%s: cannot become %s", procname, VMD_USER);
	}
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	/* The parent's death ends a child, so no process outlives the daemon. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
}

/* vmd -X name [-d] [-v...]: a re-executed child. */
int
proc_main(int argc, char *argv[])
{
	int debug = 0, verbose = 0;

	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "-d") == 0)
			debug = 1;
		else if (strncmp(argv[i], "-v", 2) == 0)
			verbose = (int)strlen(argv[i]) - 1;
	}
	if (argc < 3)
		return 1;
	if (strcmp(argv[2], "control") == 0)
		return control_main(debug, verbose);
	if (strcmp(argv[2], "vmm") == 0)
		return vmm_main(debug, verbose);
	if (strcmp(argv[2], "priv") == 0)
		return priv_main(debug, verbose);
	fprintf(stderr, "vmd: unknown process %s\n", argv[2]);
	return 1;
}
