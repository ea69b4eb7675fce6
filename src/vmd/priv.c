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
 *
 * It trusts no request: it creates only new taps (never takes over an
 * interface that exists: eth0, lo, a user's persistent tap), configures and
 * detaches only the taps it created, puts them only on its switches'
 * bridges, adopts only interfaces that are bridges, and removes only the
 * switches it knows.  Anything else is refused with the reason, logged and
 * answered (MSG_PRIV_REFUSED, or the tap reply's error), and not acted on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <stdarg.h>
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

/* A tap priv created: its name, and its index, which a new interface of the same name lacks. */
struct priv_tap {
	char ifname[VM_IFNAME_MAX];
	unsigned ifindex;
};

#define PRIV_MAX_TAPS (VMD_MAX_VMS * VM_MAX_NICS)

/* The priv process's environment. */
struct priv_env {
	struct event_base *base;
	int parent_fd;
	struct msg_buf buf;
	struct priv_switch switches[VMD_MAX_SWITCHES];
	int nswitches;
	struct priv_tap taps[PRIV_MAX_TAPS];
	int ntaps;
};

#define PRIV_TAP_FLAGS (PRIV_TAP_LOCAL | PRIV_TAP_DOWN | PRIV_TAP_LOCAL6 | PRIV_TAP_GROUP)

static int
refuse(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Says why in why (NETIF_ERROR_MAX bytes); returns -1. */
static int
refuse(char *why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, NETIF_ERROR_MAX, fmt, ap);
	va_end(ap);
	return -1;
}

/* Logs a refused request and tells the parent, which did not expect it. */
static void
send_refusal(struct priv_env *env, uint32_t type, uint32_t peer, const char *ifname,
	     const char *why)
{
	struct msg_priv_refused r = { .type = type };

	log_warnx("priv: %s %s refused: %s", msg_type_name(type), ifname, why);
	snprintf(r.ifname, sizeof(r.ifname), "%s", ifname);
	snprintf(r.reason, sizeof(r.reason), "%s", why);
	if (msg_send(env->parent_fd, MSG_PRIV_REFUSED, peer, &r, sizeof(r), NULL, 0) < 0)
		fatal("priv: cannot reply");
}

/* Forgets the taps that are gone (their VM exited) or are no longer the ones it made. */
static void
prune_taps(struct priv_env *env)
{
	int kept = 0;

	for (int i = 0; i < env->ntaps; i++)
		if (if_nametoindex(env->taps[i].ifname) == env->taps[i].ifindex)
			env->taps[kept++] = env->taps[i];
	env->ntaps = kept;
}

static void
remember_tap(struct priv_env *env, const char *ifname)
{
	unsigned ifindex = if_nametoindex(ifname);

	if (ifindex == 0)
		return;
	if (env->ntaps == PRIV_MAX_TAPS)
		prune_taps(env);
	if (env->ntaps == PRIV_MAX_TAPS) {
		log_warnx("priv: more than %d taps: %s will not be reattached", PRIV_MAX_TAPS,
			  ifname);
		return;
	}
	snprintf(env->taps[env->ntaps].ifname, VM_IFNAME_MAX, "%s", ifname);
	env->taps[env->ntaps++].ifindex = ifindex;
}

/* Whether ifname is a tap priv made, still the same interface. */
static bool
is_own_tap(const struct priv_env *env, const char *ifname)
{
	unsigned ifindex = if_nametoindex(ifname);

	for (int i = 0; i < env->ntaps; i++)
		if (strcmp(env->taps[i].ifname, ifname) == 0)
			return ifindex != 0 && env->taps[i].ifindex == ifindex;
	return false;
}

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
	/* TUN_EXCL: a new tap, never an interface of that name that exists. */
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_TUN_EXCL;
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

static bool
is_switch_bridge(const struct priv_env *env, const char *name)
{
	for (int i = 0; i < env->nswitches; i++)
		if (strcmp(env->switches[i].bridge, name) == 0)
			return true;
	return false;
}

/* A name priv may give a new tap: a plain name, no switch's, no interface's that exists. */
static int
check_new_tap(const struct priv_env *env, const char *ifname, char *why)
{
	char err[256];

	if (vm_check_ifname("interface", ifname, err, sizeof(err)) < 0)
		return refuse(why, "%s", err);
	if (is_switch_bridge(env, ifname) ||
	    strncmp(ifname, NETIF_BRIDGE_PREFIX, strlen(NETIF_BRIDGE_PREFIX)) == 0)
		return refuse(why, "%s is a switch's bridge name", ifname);
	if (netif_exists(ifname))
		return refuse(why, "interface %s exists: priv makes its own taps and takes over "
			      "no other interface", ifname);
	return 0;
}

/* The bridge a tap request names, if any, must be one of vm.conf's switches'. */
static int
check_tap_bridge(const struct priv_env *env, const char *bridge, char *why)
{
	if (bridge[0] != '\0' && !is_switch_bridge(env, bridge))
		return refuse(why, "bridge %s is not a switch's: priv joins taps only to the "
			      "bridges of vm.conf's switches", bridge);
	return 0;
}

/* What a tap request asks beyond the names: known flags, prefix lengths that are lengths. */
static int
check_tap_settings(const struct msg_priv_tap *tap, char *why)
{
	if (tap->flags & ~PRIV_TAP_FLAGS)
		return refuse(why, "unknown flags %#x", tap->flags);
	if ((tap->flags & PRIV_TAP_LOCAL) && (tap->prefix_len < 1 || tap->prefix_len > 32))
		return refuse(why, "IPv4 prefix length %u", tap->prefix_len);
	if ((tap->flags & PRIV_TAP_LOCAL6) && (tap->prefix6_len < 1 || tap->prefix6_len > 128))
		return refuse(why, "IPv6 prefix length %u", tap->prefix6_len);
	return 0;
}

/* An attach or detach: only for a tap priv made, and only with a switch's bridge. */
static int
check_own_tap(const struct priv_env *env, const struct msg_priv_tap *tap, char *why)
{
	if (!is_own_tap(env, tap->ifname))
		return refuse(why, "interface %s is not a tap priv made", tap->ifname);
	return check_tap_bridge(env, tap->bridge, why);
}

/* A bridge a switch may have: a plain name, not a tap, and a bridge if it exists. */
static int
check_switch(const struct priv_env *env, const struct msg_priv_switch *msw, char *why)
{
	char err[256];

	if (vm_check_name("switch", msw->name, err, sizeof(err)) < 0 ||
	    vm_check_ifname("bridge", msw->bridge, err, sizeof(err)) < 0)
		return refuse(why, "%s", err);
	if (is_own_tap(env, msw->bridge))
		return refuse(why, "%s is a VM's tap", msw->bridge);
	if (netif_exists(msw->bridge) && !netif_is_bridge(msw->bridge))
		return refuse(why, "interface %s exists and is not a bridge: a switch adopts "
			      "only bridges", msw->bridge);
	return 0;
}

static void
add_switch(struct priv_env *env, const struct msg_priv_switch *msw)
{
	struct priv_switch *sw = find_bridge(env, msw->bridge);
	char err[NETIF_ERROR_MAX];
	bool created;

	if (check_switch(env, msw, err) < 0) {
		send_refusal(env, MSG_PRIV_SWITCH, 0, msw->bridge, err);
		return;
	}
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

	/* Also when it failed when it was declared: then there is nothing to remove. */
	if (sw == NULL || strcmp(sw->name, msw->name) != 0) {
		send_refusal(env, MSG_PRIV_REMOVE, 0, msw->bridge, "not a switch priv knows");
		return;
	}
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

	if (tap->bridge[0] != '\0' && netif_bridge_add_port(tap->bridge, tap->ifname, err) < 0)
		return -1;
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
	tap.error = 0;
	if (check_new_tap(env, tap.ifname, err) < 0 || check_tap_bridge(env, tap.bridge, err) < 0 ||
	    check_tap_settings(&tap, err) < 0) {
		log_warnx("priv: tap %s refused: %s", tap.ifname, err);
		snprintf(tap.reason, sizeof(tap.reason), "refused: %.*s", PRIV_REASON_MAX - 10, err);
		tap.error = EPERM;
	} else if ((fd = priv_open_tap(tap.ifname, &tap.error)) >= 0) {
		remember_tap(env, tap.ifname);
		if (configure_tap(env, &tap, err) < 0) {
			snprintf(tap.reason, sizeof(tap.reason), "%s", err);
			tap.error = EIO;
			close(fd);
			fd = -1;
		}
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
	case MSG_PRIV_ATTACH:
		if (msg_read_priv_tap(m, &tap) < 0)
			break;
		/* A tap whose VM just exited is gone: nothing to do. */
		if (!netif_exists(tap.ifname))
			return;
		if (check_own_tap(env, &tap, err) < 0 ||
		    (m->hdr.type == MSG_PRIV_ATTACH && check_tap_settings(&tap, err) < 0))
			send_refusal(env, m->hdr.type, m->hdr.peer_id, tap.ifname, err);
		else if (m->hdr.type == MSG_PRIV_DETACH &&
			 netif_bridge_remove_port(tap.bridge, tap.ifname, err) < 0)
			log_warnx("interface %s: %s", tap.ifname, err);
		else if (m->hdr.type == MSG_PRIV_ATTACH && configure_tap(env, &tap, err) < 0)
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
