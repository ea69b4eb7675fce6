/*
 * The control process: runs as _vmd in an empty chroot, with no capabilities
 * and an allow-list filter (procs[], confine.c), accepts vmctl's
 * connections on /run/vmd.sock (the parent bound it), and forwards
 * well-formed requests to the parent.  It vouches for nobody: it passes each
 * connection's descriptor to the parent once (MSG_CTL_CLIENT), and the
 * parent asks the kernel who is at the other end.  Replies go back to the
 * client they name.  Nothing here blocks: writes are queued, a client has at
 * most CONTROL_MAX_IN_FLIGHT requests unanswered and is not read while its
 * replies wait, connections are limited per uid, and idle ones are closed.
 * A client that sends anything malformed gets an error; the parent is
 * trusted, and its malformed messages are fatal.
 */
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "vmd/vmd.h"

/*
 * Limits on clients (vmd.8, THE CONTROL SOCKET).  Root always gets in: the
 * global cap counts other users only, and root has its own reserve.
 */
#define CONTROL_MAX_PER_UID   16  /* connections of one non-root uid */
#define CONTROL_MAX_CLIENTS   512 /* connections of all non-root uids */
#define CONTROL_ROOT_RESERVE  32  /* root's connections beyond those */
#define CONTROL_MAX_IN_FLIGHT 4	  /* requests of one client not yet answered */
#define CONTROL_IDLE_TIMEOUT  60  /* seconds; $VMD_IDLE_TIMEOUT for tests */
/* Replies queued for one client (a status of many VMs is many records). */
#define CONTROL_CLIENT_QUEUE_MAX 8192
#define CONTROL_PARENT_QUEUE_MAX (256 * 1024)

struct control_env;

struct control_client {
	TAILQ_ENTRY(control_client) entry;
	struct control_env *env;
	uint32_t id;
	int fd;
	struct ucred cred;
	struct event *read_ev;
	struct event *idle_ev;
	bool reading;		/* read_ev is added */
	int in_flight;		/* requests forwarded, their MSG_CTL_RESULT not yet queued */
	struct msg_channel out; /* replies waiting for the client to read them */
};

/* The control process's environment. */
struct control_env {
	struct event_base *base;
	int parent_fd;
	struct msg_channel to_parent;
	int listen_fd;
	struct event *listen_ev;
	TAILQ_HEAD(, control_client) clients;
	int nclients;	   /* all of them */
	int nclients_user; /* those of non-root uids */
	uint32_t next_id;
	struct timeval idle_timeout;
	struct msg_buf buf;
	uint8_t payload[MSG_PAYLOAD_MAX];
};

static void
send_parent(struct control_env *env, uint32_t type, uint32_t peer, const void *data, size_t len,
	    const int *fds, int nfds)
{
	if (msg_channel_send(&env->to_parent, type, peer, data, len, fds, nfds) < 0)
		fatal("cannot send %s to the parent", msg_type_name(type));
}

static void
on_parent_write_error(struct msg_channel *ch, int error, void *arg)
{
	if (error != 0) {
		errno = error;
		fatal("cannot write to the parent");
	}
}

static struct control_client *
client_find(struct control_env *env, uint32_t id)
{
	struct control_client *c;

	TAILQ_FOREACH(c, &env->clients, entry)
		if (c->id == id)
			return c;
	return NULL;
}

static void
client_close(struct control_env *env, struct control_client *c)
{
	struct msg_ctl_client gone = { c->id, 0 };

	send_parent(env, MSG_CTL_CLIENT, c->id, &gone, sizeof(gone), NULL, 0);
	TAILQ_REMOVE(&env->clients, c, entry);
	event_free(c->read_ev);
	event_free(c->idle_ev);
	msg_channel_release(&c->out);
	close(c->fd);
	env->nclients--;
	if (c->cred.uid != 0)
		env->nclients_user--;
	free(c);
}

/*
 * A client is read only while it has fewer than CONTROL_MAX_IN_FLIGHT
 * requests unanswered and has read every reply: one that sends without
 * reading fills its own socket and slows nobody else.
 */
static bool
client_may_read(const struct control_client *c)
{
	return c->in_flight < CONTROL_MAX_IN_FLIGHT && msg_channel_idle(&c->out);
}

static void
client_update_reading(struct control_client *c)
{
	bool want = client_may_read(c);

	if (want == c->reading)
		return;
	if (want ? event_add(c->read_ev, NULL) < 0 : event_del(c->read_ev) < 0)
		fatalx("client %u: cannot watch its socket", c->id);
	c->reading = want;
}

/* Sends to the client; 0, or -1 when it had to go (c is freed). */
static int
client_send(struct control_env *env, struct control_client *c, uint32_t type, const void *data,
	    size_t len, const int *fds, int nfds)
{
	if (msg_channel_send(&c->out, type, 0, data, len, fds, nfds) == 0)
		return 0;
	log_debug("client %u: %s: dropped", c->id,
		  errno == ENOBUFS ? "does not read its replies" : strerror(errno));
	client_close(env, c);
	return -1;
}

static void
on_client_drained(struct msg_channel *ch, int error, void *arg)
{
	struct control_client *c = arg;

	if (error != 0) {
		log_debug("client %u: %s", c->id, strerror(error));
		client_close(c->env, c);
		return;
	}
	client_update_reading(c);
}

/* The one length check per type: the parent's readers, run here first. */
static int
request_well_formed(const struct msg *m, char *err, size_t errlen)
{
	static struct ctl_start start;
	struct ctl_target target;
	struct ctl_path path;

	snprintf(err, errlen, "malformed %s request", msg_type_name(m->hdr.type));
	if (!msg_is_ctl_request(m->hdr.type) || m->nfds != 0)
		return -1;
	if (m->hdr.type == MSG_CTL_START)
		return msg_read_ctl_start(m, &start, err, errlen);
	if (m->hdr.type == MSG_CTL_LOAD)
		return msg_read_ctl_path(m, &path);
	return msg_read_ctl_target(m, &target);
}

/* Forwards one request; 0, or -1 when the client had to go (c is freed). */
static int
client_forward(struct control_env *env, struct control_client *c, struct msg *m)
{
	struct ctl_cred cred = { c->cred.uid, c->cred.gid, c->cred.pid };
	struct ctl_result r = { EINVAL, 0, "" };

	if (request_well_formed(m, r.message, sizeof(r.message)) < 0) {
		log_debug("client %u: %s", c->id, r.message);
		return client_send(env, c, MSG_CTL_RESULT, &r, sizeof(r), NULL, 0);
	}
	/*
	 * The cred field is kept for the wire format and the logs; the parent
	 * overwrites it with what the kernel told it about this connection.
	 */
	memcpy(env->payload, m->data, m->hdr.len);
	memcpy(env->payload, &cred, sizeof(cred));
	send_parent(env, m->hdr.type, c->id, env->payload, m->hdr.len, NULL, 0);
	c->in_flight++;
	return 0;
}

static void
on_client(evutil_socket_t fd, short what, void *arg)
{
	struct control_client *c = arg;
	struct control_env *env = c->env;
	struct msg m;
	int rc = 1;

	while (client_may_read(c) && (rc = msg_recv(c->fd, &m, &env->buf)) > 0) {
		int forwarded;

		evtimer_add(c->idle_ev, &env->idle_timeout);
		forwarded = client_forward(env, c, &m);
		msg_close_fds(&m);
		if (forwarded < 0)
			return; /* c is gone */
	}
	if (rc == 0 || (rc < 0 && errno != EAGAIN)) {
		if (rc < 0)
			log_debug("client %u: %s", c->id, strerror(errno));
		client_close(env, c);
		return;
	}
	client_update_reading(c);
}

/* Closes a client that has sent nothing and waits for nothing. */
static void
on_client_idle(evutil_socket_t fd, short what, void *arg)
{
	struct control_client *c = arg;

	if (c->in_flight > 0 || !msg_channel_idle(&c->out)) {
		evtimer_add(c->idle_ev, &c->env->idle_timeout);
		return;
	}
	log_debug("client %u: idle for %ld s: closed", c->id, (long)c->env->idle_timeout.tv_sec);
	client_close(c->env, c);
}

/* Whether a new connection of this uid is within the limits. */
static bool
client_admitted(struct control_env *env, uid_t uid)
{
	struct control_client *c;
	int same = 0;

	if (uid == 0)
		return env->nclients < CONTROL_MAX_CLIENTS + CONTROL_ROOT_RESERVE;
	if (env->nclients_user >= CONTROL_MAX_CLIENTS)
		return false;
	TAILQ_FOREACH(c, &env->clients, entry)
		if (c->cred.uid == uid)
			same++;
	return same < CONTROL_MAX_PER_UID;
}

static struct control_client *
client_new(struct control_env *env, int cfd, const struct ucred *cred)
{
	struct control_client *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->env = env;
	c->fd = cfd;
	c->cred = *cred;
	do
		c->id = ++env->next_id;
	while (c->id == 0 || client_find(env, c->id) != NULL); /* 0 means no client */
	c->read_ev = event_new(env->base, cfd, EV_READ | EV_PERSIST, on_client, c);
	c->idle_ev = evtimer_new(env->base, on_client_idle, c);
	if (c->read_ev == NULL || c->idle_ev == NULL ||
	    msg_channel_init(&c->out, env->base, cfd, CONTROL_CLIENT_QUEUE_MAX, on_client_drained,
			     c) < 0 ||
	    event_add(c->read_ev, NULL) < 0 || evtimer_add(c->idle_ev, &env->idle_timeout) < 0) {
		if (c->read_ev)
			event_free(c->read_ev);
		if (c->idle_ev)
			event_free(c->idle_ev);
		msg_channel_release(&c->out);
		free(c);
		return NULL;
	}
	c->reading = true;
	return c;
}

static void
on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct control_env *env = arg;
	struct control_client *c;
	struct msg_ctl_client hello;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int cfd;

	cfd = accept4(env->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("accept");
		return;
	}
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_warn("client");
		close(cfd);
		return;
	}
	/* Accepted and closed at once: the listening socket never stops, so root gets in. */
	if (!client_admitted(env, cred.uid)) {
		log_debug("uid %u: too many connections: refused", (unsigned)cred.uid);
		close(cfd);
		return;
	}
	if ((c = client_new(env, cfd, &cred)) == NULL) {
		log_warn("client of uid %u", (unsigned)cred.uid);
		close(cfd);
		return;
	}
	TAILQ_INSERT_TAIL(&env->clients, c, entry);
	env->nclients++;
	if (cred.uid != 0)
		env->nclients_user++;
	/* The parent asks the kernel who this is: control's word is not taken. */
	hello = (struct msg_ctl_client){ c->id, 1 };
	send_parent(env, MSG_CTL_CLIENT, c->id, &hello, sizeof(hello), &cfd, 1);
}

/* A message from the parent: a reply or information for one client. */
void
control_dispatch(void *arg, struct msg *m)
{
	struct control_env *env = arg;
	struct control_client *c;

	if (m->hdr.type != MSG_CTL_RESULT && m->hdr.type != MSG_CTL_INFO)
		fatalx("unexpected %s message from the parent", msg_type_name(m->hdr.type));
	c = client_find(env, m->hdr.peer_id);
	if (c != NULL && m->hdr.type == MSG_CTL_RESULT && c->in_flight > 0)
		c->in_flight--;
	if (c != NULL &&
	    client_send(env, c, m->hdr.type, m->data, m->hdr.len, m->fds, m->nfds) == 0)
		client_update_reading(c);
}

static struct timeval
idle_timeout(void)
{
	const char *text = getenv("VMD_IDLE_TIMEOUT");
	struct timeval tv = { CONTROL_IDLE_TIMEOUT, 0 };

	if (text != NULL && atoi(text) > 0)
		tv.tv_sec = atoi(text);
	return tv;
}

/* Runs confined (proc_run): _vmd, an empty root, no capabilities, its filter. */
int
control_main(struct proc_child *child)
{
	static struct control_env env;

	child->env = &env;
	env.base = child->base;
	env.parent_fd = child->parent_fd;
	env.listen_fd = child->passed_fd;
	TAILQ_INIT(&env.clients);
	env.idle_timeout = idle_timeout();
	if (fcntl(env.listen_fd, F_SETFL, O_NONBLOCK) < 0)
		return -1;
	if (msg_channel_init(&env.to_parent, env.base, env.parent_fd, CONTROL_PARENT_QUEUE_MAX,
			     on_parent_write_error, &env) < 0) {
		log_warnx("cannot watch the parent's socket");
		return -1;
	}
	env.listen_ev = event_new(env.base, env.listen_fd, EV_READ | EV_PERSIST, on_accept, &env);
	if (env.listen_ev == NULL || event_add(env.listen_ev, NULL) < 0) {
		log_warnx("cannot watch the control socket");
		return -1;
	}
	return 0;
}
