/*
 * The control process: runs as _vmd in an empty chroot, with no capabilities
 * and an allow-list filter (procs[], confine.c), accepts vmctl's
 * connections on /run/vmd.sock (the parent bound it), learns each peer's
 * uid and gid from the kernel (SO_PEERCRED), and forwards well-formed
 * requests to the parent with those credentials written in.  Replies go
 * back to the client they name.  A client that sends anything malformed is
 * dropped; the parent is trusted, and its malformed messages are fatal.
 */
#include <errno.h>
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

#define CONTROL_MAX_CLIENTS 512

struct control_env;

struct control_client {
	TAILQ_ENTRY(control_client) entry;
	struct control_env *env;
	uint32_t id;
	int fd;
	struct ucred cred;
	struct event *ev;
};

/* The control process's environment. */
struct control_env {
	struct event_base *base;
	int parent_fd;
	int listen_fd;
	struct event *listen_ev;
	TAILQ_HEAD(, control_client) clients;
	int nclients;
	uint32_t next_id;
	struct msg_buf buf;
	uint8_t payload[MSG_PAYLOAD_MAX];
};

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
	TAILQ_REMOVE(&env->clients, c, entry);
	event_free(c->ev);
	close(c->fd);
	free(c);
	env->nclients--;
	if (env->nclients == CONTROL_MAX_CLIENTS - 1)
		event_add(env->listen_ev, NULL);
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

static void
client_forward(struct control_env *env, struct control_client *c, struct msg *m)
{
	struct ctl_cred cred = { c->cred.uid, c->cred.gid, c->cred.pid };
	struct ctl_result r = { EINVAL, 0, "" };

	if (request_well_formed(m, r.message, sizeof(r.message)) < 0) {
		msg_send_nowait(c->fd, MSG_CTL_RESULT, 0, &r, sizeof(r), NULL, 0);
		log_debug("client %u: %s", c->id, r.message);
		return;
	}
	/* Every request starts with its credentials: the kernel's, not vmctl's. */
	memcpy(env->payload, m->data, m->hdr.len);
	memcpy(env->payload, &cred, sizeof(cred));
	if (msg_send(env->parent_fd, m->hdr.type, c->id, env->payload, m->hdr.len, NULL, 0) < 0)
		fatal("cannot forward to the parent");
}

static void
on_client(evutil_socket_t fd, short what, void *arg)
{
	struct control_client *c = arg;
	struct control_env *env = c->env;
	struct msg m;
	int rc;

	while ((rc = msg_recv(c->fd, &m, &env->buf)) > 0) {
		client_forward(env, c, &m);
		msg_close_fds(&m);
	}
	if (rc == 0 || errno != EAGAIN) {
		if (rc < 0)
			log_debug("client %u: %s", c->id, strerror(errno));
		client_close(env, c);
	}
}

static void
on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct control_env *env = arg;
	struct control_client *c;
	socklen_t len = sizeof(c->cred);
	int cfd;

	cfd = accept4(env->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("accept");
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
		log_warn("client");
		free(c);
		close(cfd);
		return;
	}
	c->env = env;
	c->fd = cfd;
	if (++env->next_id == 0)
		env->next_id = 1; /* 0 means no client */
	c->id = env->next_id;
	c->ev = event_new(env->base, cfd, EV_READ | EV_PERSIST, on_client, c);
	if (c->ev == NULL || event_add(c->ev, NULL) < 0) {
		if (c->ev)
			event_free(c->ev);
		close(cfd);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&env->clients, c, entry);
	/* Too many clients: stop accepting until one goes. */
	if (++env->nclients == CONTROL_MAX_CLIENTS)
		event_del(env->listen_ev);
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
	if (c != NULL && msg_send_nowait(c->fd, m->hdr.type, 0, m->data, m->hdr.len, m->fds,
					 m->nfds) < 0) {
		log_debug("client %u: %s", c->id, strerror(errno));
		client_close(env, c);
	}
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
	if (fcntl(env.listen_fd, F_SETFL, O_NONBLOCK) < 0)
		return -1;
	env.listen_ev = event_new(env.base, env.listen_fd, EV_READ | EV_PERSIST, on_accept, &env);
	if (env.listen_ev == NULL || event_add(env.listen_ev, NULL) < 0) {
		log_warnx("cannot watch the control socket");
		return -1;
	}
	return 0;
}
