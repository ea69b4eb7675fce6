/*
 * The priv process: stays root for network configuration only, with
 * CAP_NET_ADMIN as its one capability and a filter (procs[], confine.c).  It creates
 * or adopts the Linux bridge of each switch (MSG_PRIV_SWITCH), creates the
 * tap of each VM interface, brings it up, puts it on its switch's bridge or
 * gives it the host's addresses of a local interface (IPv4, and IPv6 with
 * `local inet6`), puts it in its device group, and passes its descriptor to
 * the parent (MSG_PRIV_TAP).  `vmctl reset switches` deletes
 * the bridges it created (MSG_PRIV_RESET); the parent then declares the
 * switches again and reattaches the running VMs' taps (MSG_PRIV_ATTACH).
 * A reload that drops a switch takes the running VMs' taps off its bridge
 * (MSG_PRIV_DETACH) and deletes the bridge if priv made it (MSG_PRIV_REMOVE).
 * At exit it deletes the bridges it created and leaves adopted ones.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/log.h"
#include "net/netif.h"
#include "vmd/vmd.h"

/* A switch's bridge as priv knows it. */
struct priv_switch {
	char name[VM_NAME_MAX + 1];
	char bridge[VM_IFNAME_MAX];
	bool created; /* by vmd: deleted at exit and on reset */
};

/* The priv process's environment. */
struct priv_env {
	struct event_base *base;
	int parent_fd;
	struct msg_buf buf;
	struct priv_switch switches[VMD_MAX_SWITCHES];
	int nswitches;
};

/* A tap for a virtio-net device: no packet info, with the virtio-net header. */
static int
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

static struct priv_switch *
find_bridge(struct priv_env *env, const char *bridge)
{
	for (int i = 0; i < env->nswitches; i++)
		if (strcmp(env->switches[i].bridge, bridge) == 0)
			return &env->switches[i];
	return NULL;
}

static void
add_switch(struct priv_env *env, const struct msg_priv_switch *msw)
{
	struct priv_switch *sw = find_bridge(env, msw->bridge);
	char err[NETIF_ERROR_MAX];
	bool created;

	if (sw != NULL && strcmp(sw->name, msw->name) != 0) {
		log_warnx("switch %s: bridge %s is already switch %s's", msw->name, msw->bridge,
			  sw->name);
		return;
	}
	if (sw == NULL && env->nswitches == VMD_MAX_SWITCHES) {
		log_warnx("switch %s: more than %d switches", msw->name, VMD_MAX_SWITCHES);
		return;
	}
	if (netif_bridge_create(msw->bridge, &created, err) < 0) {
		log_warnx("switch %s: %s", msw->name, err);
		return;
	}
	if (sw == NULL) {
		sw = &env->switches[env->nswitches++];
		snprintf(sw->name, sizeof(sw->name), "%s", msw->name);
		snprintf(sw->bridge, sizeof(sw->bridge), "%s", msw->bridge);
		sw->created = created;
		log_info("switch %s: bridge %s %s", sw->name, sw->bridge, created ? "created" : "adopted");
	}
	if (netif_set_up(sw->bridge, !(msw->flags & PRIV_SWITCH_DOWN), err) < 0)
		log_warnx("switch %s: %s", sw->name, err);
}

/* Deletes the bridges vmd created and forgets every switch. */
static void
remove_switches(struct priv_env *env)
{
	char err[NETIF_ERROR_MAX];

	for (int i = 0; i < env->nswitches; i++) {
		struct priv_switch *sw = &env->switches[i];

		if (!sw->created)
			continue;
		if (netif_bridge_destroy(sw->bridge, err) < 0)
			log_warnx("switch %s: %s", sw->name, err);
		else
			log_info("switch %s: bridge %s deleted", sw->name, sw->bridge);
	}
	env->nswitches = 0;
}

/*
 * A switch gone from the configuration (reload): priv forgets it and
 * deletes its bridge if it made it; an adopted bridge stays.  The parent
 * has taken the running VMs' taps off it first (MSG_PRIV_DETACH).
 */
static void
remove_switch(struct priv_env *env, const struct msg_priv_switch *msw)
{
	struct priv_switch *sw = find_bridge(env, msw->bridge);
	char err[NETIF_ERROR_MAX];

	if (sw == NULL || strcmp(sw->name, msw->name) != 0)
		return; /* never made or adopted: it failed when it was declared */
	if (!sw->created)
		log_info("switch %s: removed; bridge %s left as it was", sw->name, sw->bridge);
	else if (netif_bridge_destroy(sw->bridge, err) < 0)
		log_warnx("switch %s: removed, but %s", sw->name, err);
	else
		log_info("switch %s: removed; bridge %s deleted", sw->name, sw->bridge);
	*sw = env->switches[--env->nswitches];
}

/* Puts a tap on its switch's bridge (or gives it its address) and sets it up or down. */
static int
configure_tap(struct priv_env *env, const struct msg_priv_tap *tap, char *err)
{
	struct in_addr addr = { tap->addr };

	if (tap->bridge[0] != '\0') {
		if (find_bridge(env, tap->bridge) == NULL && !netif_is_bridge(tap->bridge)) {
			snprintf(err, NETIF_ERROR_MAX, "bridge %s does not exist", tap->bridge);
			return -1;
		}
		if (netif_bridge_add_port(tap->bridge, tap->ifname, err) < 0)
			return -1;
	}
	if ((tap->flags & PRIV_TAP_LOCAL) &&
	    netif_set_addr4(tap->ifname, addr, tap->prefix_len, err) < 0)
		return -1;
	if ((tap->flags & PRIV_TAP_GROUP) && netif_set_group(tap->ifname, tap->group, err) < 0)
		return -1;
	if (tap->flags & PRIV_TAP_LOCAL6) {
		struct in6_addr addr6;

		memcpy(&addr6, tap->addr6, sizeof(addr6));
		if (netif_add_addr6(tap->ifname, &addr6, tap->prefix6_len, err) < 0)
			return -1;
	}
	return netif_set_up(tap->ifname, !(tap->flags & PRIV_TAP_DOWN), err);
}

static void
answer_tap(struct priv_env *env, struct msg *m)
{
	struct msg_priv_tap tap;
	char err[NETIF_ERROR_MAX];
	int fd = -1;

	if (msg_read_priv_tap(m, &tap) < 0)
		fatalx("priv: malformed %s message", msg_type_name(m->hdr.type));
	tap.reason[0] = '\0';
	if (tap.ifname[0] == '\0') {
		tap.error = EINVAL;
	} else if ((fd = priv_open_tap(tap.ifname, &tap.error)) >= 0 &&
		   configure_tap(env, &tap, err) < 0) {
		snprintf(tap.reason, sizeof(tap.reason), "%s", err);
		tap.error = EIO;
		close(fd);
		fd = -1;
	}
	if (msg_send(env->parent_fd, MSG_PRIV_TAP, m->hdr.peer_id, &tap, sizeof(tap), &fd,
		     fd >= 0 ? 1 : 0) < 0)
		fatal("priv: cannot reply");
	if (fd >= 0)
		close(fd);
}

void
priv_dispatch(void *arg, struct msg *m)
{
	struct priv_env *env = arg;
	struct msg_priv_switch sw;
	struct msg_priv_tap tap;
	char err[NETIF_ERROR_MAX];

	switch (m->hdr.type) {
	case MSG_PRIV_TAP:
		answer_tap(env, m);
		return;
	case MSG_PRIV_SWITCH:
	case MSG_PRIV_RESET:
	case MSG_PRIV_REMOVE:
		if (msg_read_priv_switch(m, &sw) < 0)
			break;
		if (m->hdr.type == MSG_PRIV_RESET)
			remove_switches(env);
		else if (m->hdr.type == MSG_PRIV_REMOVE)
			remove_switch(env, &sw);
		else
			add_switch(env, &sw);
		return;
	case MSG_PRIV_DETACH:
		if (msg_read_priv_tap(m, &tap) < 0)
			break;
		if (netif_bridge_remove_port(tap.bridge, tap.ifname, err) < 0)
			log_warnx("interface %s: %s", tap.ifname, err);
		return;
	case MSG_PRIV_ATTACH:
		if (msg_read_priv_tap(m, &tap) < 0)
			break;
		/* A tap whose VM just exited is gone: nothing to reattach. */
		if (netif_exists(tap.ifname) && configure_tap(env, &tap, err) < 0)
			log_warnx("interface %s: %s", tap.ifname, err);
		return;
	}
	fatalx("priv: unexpected %s message", msg_type_name(m->hdr.type));
}

/* The parent is gone: so are the bridges priv made. */
void
priv_parent_gone(void *env)
{
	remove_switches(env);
}

static void
on_terminate(evutil_socket_t sig, short what, void *arg)
{
	remove_switches(arg);
	exit(0);
}

/* Runs confined (proc_run): root with CAP_NET_ADMIN only, and its filter. */
int
priv_main(struct proc_child *child)
{
	static struct priv_env env;
	struct event *term;

	child->env = &env;
	env.base = child->base;
	env.parent_fd = child->parent_fd;
	term = evsignal_new(env.base, SIGTERM, on_terminate, &env);
	if (term == NULL || event_add(term, NULL) < 0) {
		log_warnx("cannot watch SIGTERM");
		return -1;
	}
	/* ^C in a terminal reaches the whole group: priv stays until the parent is done. */
	signal(SIGINT, SIG_IGN);
	return 0;
}
