/*
 * The priv process: stays root for network configuration only.  It creates
 * tap devices (vmN-ifM) and passes their descriptors to the parent.
 * Bridges and addresses come with the network work.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/log.h"
#include "vmd/vmd.h"

/* The priv process's environment. */
struct priv_env {
	struct event_base *base;
	int parent_fd;
	struct msg_buf buf;
};

/* A tap for a virtio-net device: no packet info, with the virtio-net header. */
int priv_open_tap(const char *ifname, int *error);

int
priv_open_tap(const char *ifname, int *error)
{
	struct ifreq ifr = { 0 };
	int fd;

	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		*error = errno;
		return -1;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		*error = errno;
		close(fd);
		return -1;
	}
	*error = 0;
	return fd;
}

static void
priv_dispatch(struct priv_env *env, struct msg *m)
{
	struct msg_priv_tap tap;
	int fd;

	if (msg_read_priv_tap(m, &tap) < 0)
		fatalx("priv: unexpected %s message", msg_type_name(m->hdr.type));
	if (tap.ifname[0] == '\0') {
		tap.error = EINVAL;
		fd = -1;
	} else {
		fd = priv_open_tap(tap.ifname, &tap.error);
	}
	if (msg_send(env->parent_fd, MSG_PRIV_TAP, m->hdr.peer_id, &tap, sizeof(tap), &fd,
		     fd >= 0 ? 1 : 0) < 0)
		fatal("priv: cannot reply");
	if (fd >= 0)
		close(fd);
}

static void
on_parent(evutil_socket_t fd, short what, void *arg)
{
	struct priv_env *env = arg;
	struct msg m;
	int rc;

	while ((rc = msg_recv(env->parent_fd, &m, &env->buf)) > 0) {
		priv_dispatch(env, &m);
		msg_close_fds(&m);
	}
	if (rc == 0 || errno != EAGAIN)
		exit(rc == 0 ? 0 : 1);
}

int
priv_main(int debug, int verbose)
{
	static struct priv_env env;
	struct event *ev;

	log_init("vmd priv", debug, verbose);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); /* no process outlives the parent */
	env.parent_fd = VMD_CHILD_FD;
	signal(SIGPIPE, SIG_IGN);
	env.base = event_base_new();
	if (env.base == NULL)
		fatalx("priv: event_base_new");
	ev = event_new(env.base, env.parent_fd, EV_READ | EV_PERSIST, on_parent, &env);
	if (ev == NULL || event_add(ev, NULL) < 0)
		fatalx("priv: cannot watch its socket");
	event_base_dispatch(env.base);
	return 0;
}
