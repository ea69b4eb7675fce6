/*
 * tests/security/native-procs's probe: `procs-probe ROLE CALL` forks a child
 * that prepares what CALL needs (a pty, a peer process, a pending
 * connection on fd 4), confines itself with the REAL confinement of ROLE's
 * row in procs[] (parent, control, priv: the function the daemon's process
 * runs), then makes CALL as a compromised process would.  It prints how it
 * ended: "allowed", "refused ERRNO" or "killed SIGNAL".  Linked against
 * build/libvmd.a, without sanitizers (they need calls no filter allows).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/io_uring.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/msg.h"
#include "net/netif.h"
#include "vmd/vmd.h"

#define SETUP_FAILED 200

/* What the child prepared before confinement. */
static struct {
	pid_t peer;	/* a process of the child's own uid, to signal and trace */
	int pty_slave;
	int pair[2];	/* a socketpair, as to the parent */
} probe;

static const struct vmd_proc *
role_row(const char *role)
{
	for (int id = 0; id < PROC_MAX; id++)
		if (strcmp(procs[id].name, role) == 0 && procs[id].confine != NULL)
			return &procs[id];
	return NULL;
}

/* A peer that runs as the confined process will (control: _vmd). */
static pid_t
start_peer(const struct vmd_proc *p)
{
	struct passwd *pw = p->user ? getpwnam(p->user) : NULL;
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid == 0) {
		close(STDOUT_FILENO);
		close(STDERR_FILENO);
		if (pw != NULL && (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0))
			_exit(1);
		/* Traceable as far as the peer is concerned; gone with the probe. */
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (getppid() != parent)
			_exit(0);
		for (;;)
			pause();
	}
	return pid;
}

/* A pending connection on fd 4, as control's listening socket has. */
static int
prepare_listener(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int l, c;

	snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "procs-probe-%d", (int)getpid());
	l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (l < 0 || c < 0 || bind(l, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(l, 4) < 0 || connect(c, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    dup2(l, VMD_EXE_FD) < 0)
		return -1;
	return 0;
}

static int
prepare(const struct vmd_proc *p)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY);

	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0)
		return -1;
	probe.pty_slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	if (probe.pty_slave < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, probe.pair) < 0)
		return -1;
	probe.peer = start_peer(p);
	return probe.peer < 0 ? -1 : prepare_listener();
}

static int
result(long rc)
{
	return rc < 0 ? errno : 0;
}

/* control's work: accept, its client's credentials, messages, the event loop, memory. */
static int
serve_like_control(void)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	static struct msg_buf buf;
	struct epoll_event ev;
	struct msg m;
	int c, ep;
	void *mem;

	if ((c = accept4(VMD_EXE_FD, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0 ||
	    getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return errno;
	if (msg_send(probe.pair[0], MSG_CTL_RESULT, 1, "x", 1, NULL, 0) < 0 ||
	    msg_recv(probe.pair[1], &m, &buf) <= 0)
		return errno;
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || epoll_wait(ep, &ev, 1, 0) < 0)
		return errno;
	if ((mem = malloc(1 << 24)) == NULL)
		return ENOMEM;
	memset(mem, 1, 1 << 24);
	free(mem);
	fprintf(stderr, "probe: logging still works\n");
	return 0;
}

/* priv's work, in the test's network namespace: a bridge, a tap on it, addresses. */
static int
set_up_network_like_priv(void)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	struct in_addr addr = { htonl(0x0a420001) };
	struct in6_addr addr6 = { .s6_addr = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 } };
	char err[NETIF_ERROR_MAX];
	bool created;
	int fd;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "probetap0");
	if ((fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK)) < 0 ||
	    ioctl(fd, TUNSETIFF, &ifr) < 0)
		return errno;
	if (netif_bridge_create("probebr0", &created, err) < 0 ||
	    netif_bridge_add_port("probebr0", "probetap0", err) < 0 ||
	    netif_set_up("probetap0", true, err) < 0 || netif_set_group("probetap0", 7, err) < 0 ||
	    netif_bridge_remove_port("probebr0", "probetap0", err) < 0 ||
	    netif_set_addr4("probetap0", addr, 31, err) < 0 ||
	    netif_add_addr6("probetap0", &addr6, 64, err) < 0 ||
	    netif_bridge_destroy("probebr0", err) < 0) {
		fprintf(stderr, "probe: %s\n", err);
		return EIO;
	}
	return 0;
}

/* The parent's work: a file as its owner, as root, a pty for a user, its children. */
static int
open_like_parent(void)
{
	int fd;

	if ((fd = open("/etc/shadow", O_RDONLY)) < 0)
		return errno;
	close(fd);
	setfsuid(65534);
	fd = open("/etc/shadow", O_RDONLY);
	setfsuid(0);
	if (fd >= 0)
		return EEXIST; /* fsuid did not take: the owner's rights are not checked */
	if (fchown(probe.pty_slave, 65534, (gid_t)-1) < 0 || kill(probe.peer, 0) < 0)
		return errno;
	return 0;
}

static int
fork_and_reap(void)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return errno;
	return 0;
}

static int
attempt(const char *call)
{
	struct io_uring_params params = { 0 };
	char c = 'x';

	if (strcmp(call, "socket-unix") == 0)
		return result(socket(AF_UNIX, SOCK_DGRAM, 0));
	if (strcmp(call, "socket-inet") == 0)
		return result(socket(AF_INET, SOCK_DGRAM, 0));
	if (strcmp(call, "socket-packet") == 0)
		return result(socket(AF_PACKET, SOCK_RAW, 0));
	if (strcmp(call, "open-shadow") == 0)
		return result(open("/etc/shadow", O_RDONLY));
	if (strcmp(call, "execve") == 0)
		return result(execl("/bin/true", "true", (char *)NULL));
	if (strcmp(call, "ptrace") == 0)
		return result(ptrace(PTRACE_ATTACH, probe.peer, NULL, NULL));
	if (strcmp(call, "kill") == 0)
		return result(kill(probe.peer, SIGKILL));
	if (strcmp(call, "io_uring") == 0)
		return result(syscall(SYS_io_uring_setup, 4, &params));
	if (strcmp(call, "tiocsti") == 0)
		return result(ioctl(probe.pty_slave, TIOCSTI, &c));
	if (strcmp(call, "mount") == 0)
		return result(mount("none", "/", "tmpfs", 0, NULL));
	if (strcmp(call, "setuid-root") == 0)
		return result(setfsuid(0) == 0 && setresuid(0, 0, 0) == 0 ? 0 : -1);
	if (strcmp(call, "mmap-exec") == 0)
		return result(mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
				   -1, 0) == MAP_FAILED ? -1 : 0);
	if (strcmp(call, "fork") == 0)
		return fork_and_reap();
	if (strcmp(call, "clone-newns") == 0)
		return result(syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0));
	if (strcmp(call, "serve") == 0)
		return serve_like_control();
	if (strcmp(call, "netsetup") == 0)
		return set_up_network_like_priv();
	if (strcmp(call, "files") == 0)
		return open_like_parent();
	fprintf(stderr, "probe: unknown call %s\n", call);
	return SETUP_FAILED;
}

int
main(int argc, char *argv[])
{
	const struct vmd_proc *p = argc == 3 ? role_row(argv[1]) : NULL;
	int status;
	pid_t pid;

	if (p == NULL) {
		fprintf(stderr, "usage: procs-probe parent|control|priv CALL\n");
		return 2;
	}
	pid = fork();
	if (pid == 0) {
		if (prepare(p) < 0) {
			perror("probe: prepare");
			_exit(SETUP_FAILED);
		}
		if (p->confine() < 0)
			_exit(SETUP_FAILED);
		_exit(attempt(argv[2]));
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return 2;
	if (WIFSIGNALED(status))
		printf("killed %s\n", sigabbrev_np(WTERMSIG(status)));
	else if (WEXITSTATUS(status) == 0)
		printf("allowed\n");
	else if (WEXITSTATUS(status) == SETUP_FAILED)
		printf("setup-failed\n");
	else
		printf("refused %s\n", strerrorname_np(WEXITSTATUS(status)));
	return 0;
}
