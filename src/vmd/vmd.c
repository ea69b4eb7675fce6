/*
 * The parent process: reads vm.conf, keeps the registry of VMs, opens what
 * they need, and starts the other processes (control, vmm, priv) as
 * re-executed children connected by socketpairs.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "vmd/config.h"
#include "vmd/vmd.h"
#include "vmd/vmm_confine.h"

/* Event priorities: lower runs first. */
enum {
	VMD_PRIO_CHILDREN, /* vmm and priv: a VM's exit before a request about it */
	VMD_PRIO_CLIENTS,  /* control's socket: the clients' requests */
	VMD_PRIO_COUNT
};

/*
 * Messages the parent queues for one child before it calls the child broken.
 * Control never stops reading the parent, and each client has at most a few
 * requests in flight, so this is far above what a busy daemon queues.
 */
#define VMD_CHILD_QUEUE_MAX (256 * 1024)
/* Clients the parent keeps credentials for: above what control admits. */
#define VMD_MAX_PEERS 1024

static void
usage(void)
{
	fprintf(stderr, "usage: vmd [-dnv] [-D macro=value] [-f file]\n"
			"       vmd -V [-k kernel] [-I initrd] [-a cmdline] [-m size] [-p cpus]\n");
	exit(1);
}

static void
parse_options(int argc, char *argv[], struct vmd_options *opts)
{
	char err[256];
	int ch;

	opts->conf_path = VMD_CONF_PATH;
	while ((ch = getopt(argc, argv, "dnvD:f:")) != -1) {
		switch (ch) {
		case 'd':
			opts->debug = 1;
			break;
		case 'n':
			opts->check_only = 1;
			break;
		case 'v':
			opts->verbose++;
			break;
		case 'D':
			if (config_check_define(optarg, err, sizeof(err)) == -1) {
				fprintf(stderr, "vmd: %s\n", err);
				exit(1);
			}
			if (opts->ndefines >= VMD_MAX_DEFINES) {
				fprintf(stderr, "vmd: more than %d -D macros\n", VMD_MAX_DEFINES);
				exit(1);
			}
			opts->defines[opts->ndefines++] = optarg;
			break;
		case 'f':
			opts->conf_path = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
}

/*
 * vmd -n: parse and check the configuration, print it back with -v, and
 * touch nothing else (no KVM, no root needed).  Returns the exit status.
 */
static int
vmd_check_config(const struct vmd_options *opts)
{
	struct config_options copts = { opts->defines, opts->ndefines, false };
	struct vmd_config conf;
	char err[1024];

	if (config_parse_file(&conf, opts->conf_path, &copts, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (opts->verbose)
		config_print(&conf, stdout);
	config_free(&conf);
	if (fflush(stdout) == EOF) {
		perror("vmd: stdout");
		return 1;
	}
	fprintf(stderr, "configuration OK\n");
	return 0;
}

void
vmd_send_child(struct vmd_env *env, struct vmd_child *child, uint32_t type, uint32_t peer,
	       const void *data, size_t len, const int *fds, int nfds)
{
	int rc;

	/*
	 * A child that lets VMD_CHILD_QUEUE_MAX messages pile up is broken.
	 * Without an event loop (unit tests drive the parent's functions over
	 * a socketpair) there is no queue: the message goes straight out.
	 */
	if (child->out.write_ev != NULL)
		rc = msg_channel_send(&child->out, type, peer, data, len, fds, nfds);
	else
		rc = msg_send_nowait(child->fd, type, peer, data, len, fds, nfds);
	if (rc < 0)
		fatal("cannot send %s to the %s process", msg_type_name(type), child->name);
}

int
vmd_flush_child(struct vmd_child *child, int timeout_ms)
{
	struct pollfd pfd = { child->fd, POLLOUT, 0 };
	int rc;

	while ((rc = msg_queue_flush(&child->out.queue, child->fd)) == 1)
		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -1;
	return rc;
}

static void
on_child_write_error(struct msg_channel *ch, int error, void *arg)
{
	struct vmd_child *child = arg;

	if (error != 0) {
		errno = error;
		fatal("cannot write to the %s process", child->name);
	}
}

static struct vmd_peer *
peer_find(struct vmd_env *env, uint32_t id)
{
	struct vmd_peer *p;

	TAILQ_FOREACH(p, &env->peers, entry)
		if (p->id == id)
			return p;
	return NULL;
}

/*
 * Whether fd is a connection accepted on vmd's own socket: a compromised
 * control could otherwise pass a socket whose peer is the parent itself (its
 * socketpair, the listening socket) and be taken for root.
 */
static bool
accepted_on_control_socket(const struct vmd_env *env, int fd)
{
	struct sockaddr_un name;
	socklen_t len = sizeof(name);
	int listening = 1;
	socklen_t llen = sizeof(listening);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &llen) < 0 || listening)
		return false;
	if (env->control_addr_len == 0)
		return true;
	memset(&name, 0, sizeof(name));
	return getsockname(fd, (struct sockaddr *)&name, &len) == 0 && len == env->control_addr_len &&
	       memcmp(&name, &env->control_addr, len) == 0;
}

/* The kernel's word on who is at the other end of a client's connection. */
static int
peer_cred_of_socket(const struct vmd_env *env, int fd, struct ctl_cred *cred)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	int domain;
	socklen_t dlen = sizeof(domain);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) < 0 || domain != AF_UNIX ||
	    !accepted_on_control_socket(env, fd) ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0 || uc.pid <= 0 ||
	    uc.pid == getpid())
		return -1;
	*cred = (struct ctl_cred){ uc.uid, uc.gid, uc.pid };
	return 0;
}

void
vmd_peer_update(struct vmd_env *env, struct msg *m)
{
	struct msg_ctl_client client;
	struct vmd_peer *p;
	struct ctl_cred cred;
	int fd;

	if (msg_read_ctl_client(m, &client) < 0)
		fatalx("malformed client message from control");
	p = peer_find(env, client.peer_id);
	if (!client.connected) {
		if (p != NULL) {
			TAILQ_REMOVE(&env->peers, p, entry);
			free(p);
			env->npeers--;
		}
		return;
	}
	fd = msg_take_fd(m, 0);
	if (peer_cred_of_socket(env, fd, &cred) < 0) {
		/* Not a client's connection: nobody's requests are taken for it. */
		log_warnx("client %u: control passed a descriptor that is not a client's socket",
			  client.peer_id);
		close(fd);
		if (p != NULL) {
			TAILQ_REMOVE(&env->peers, p, entry);
			free(p);
			env->npeers--;
		}
		return;
	}
	close(fd);
	if (p == NULL && env->npeers >= VMD_MAX_PEERS) {
		/* More than control ever admits: its requests are refused. */
		log_warnx("client %u: more than %d clients: refused", client.peer_id, VMD_MAX_PEERS);
		return;
	}
	if (p == NULL) {
		env->npeers++;
		if ((p = calloc(1, sizeof(*p))) == NULL)
			fatal("client %u", client.peer_id);
		p->id = client.peer_id;
		TAILQ_INSERT_TAIL(&env->peers, p, entry);
	}
	p->cred = cred;
	log_debug("client %u: uid %u pid %d", p->id, cred.uid, (int)cred.pid);
}

int
vmd_peer_apply_cred(struct vmd_env *env, struct msg *m, uint8_t *out, size_t outlen)
{
	struct vmd_peer *p = peer_find(env, m->hdr.peer_id);

	if (p == NULL || m->hdr.len < sizeof(p->cred) || m->hdr.len > outlen)
		return -1;
	memcpy(out, m->data, m->hdr.len);
	memcpy(out, &p->cred, sizeof(p->cred));
	m->data = out;
	return 0;
}

/* One request from control, with its credentials the kernel's. */
void
vmd_control_message(struct vmd_env *env, struct msg *m)
{
	static uint8_t payload[MSG_PAYLOAD_MAX];

	if (m->hdr.type == MSG_CTL_CLIENT) {
		vmd_peer_update(env, m);
		return;
	}
	if (!msg_is_ctl_request(m->hdr.type))
		fatalx("unexpected %s message from control", msg_type_name(m->hdr.type));
	if (vmd_peer_apply_cred(env, m, payload, sizeof(payload)) < 0) {
		log_warnx("%s request for client %u, whom control never introduced: refused",
			  msg_type_name(m->hdr.type), m->hdr.peer_id);
		vmd_reply(env, m->hdr.peer_id, EPERM, 0, "permission denied (unknown client)");
		return;
	}
	vmd_dispatch_control(env, m);
}

void
vmd_reply(struct vmd_env *env, uint32_t peer, int error, uint32_t id, const char *fmt, ...)
{
	struct ctl_result r = { error, id, "" };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r.message, sizeof(r.message), fmt, ap);
	va_end(ap);
	vmd_send_child(env, &env->control, MSG_CTL_RESULT, peer, &r, sizeof(r), NULL, 0);
}

/* priv would not do what the parent asked: a switch on a host interface that is no bridge, say. */
void
vmd_priv_refused(const struct msg *m)
{
	struct msg_priv_refused r;

	if (msg_read_priv_refused(m, &r) < 0)
		fatalx("malformed %s from the priv process", msg_type_name(m->hdr.type));
	log_warnx("priv refused %s %s: %s", msg_type_name(r.type), r.ifname, r.reason);
}

/* priv's messages: refusals, and taps that come to a launch that gave up. */
void
vmd_dispatch_priv(struct vmd_env *env, struct msg *m)
{
	if (m->hdr.type == MSG_PRIV_REFUSED)
		vmd_priv_refused(m);
	else if (m->hdr.type == MSG_PRIV_TAP)
		log_debug("a late tap from priv: closed"); /* its launch gave up */
	else
		fatalx("unexpected %s from the priv process", msg_type_name(m->hdr.type));
}

/* How a child ended, for the parent's last words. */
static void
describe_child_end(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		snprintf(buf, len, "was killed by its system call filter "
				   "(its log names the call; VMD_SECCOMP=log allows and logs it)");
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "exited (status %d)", WEXITSTATUS(status));
}

/*
 * A child is gone (its socket closed, or SIGCHLD): the daemon cannot go on
 * without it.  Its socket usually closes just before it can be reaped, so
 * the wait allows it a moment to become a zombie.
 */
static void __attribute__((noreturn))
vmd_child_gone(struct vmd_child *child, const int *known_status)
{
	char how[160] = "closed its socket";
	int status;

	if (known_status != NULL)
		describe_child_end(*known_status, how, sizeof(how));
	else
		for (int tries = 0; tries < 100; tries++) {
			if (waitpid(child->pid, &status, WNOHANG) == child->pid) {
				describe_child_end(status, how, sizeof(how));
				break;
			}
			usleep(10000);
		}
	fatalx("the %s process %s", child->name, how);
}

/*
 * Reads the messages waiting on a child's socket; its end is the daemon's.
 * Control's socket gives one message per call and has the lowest priority:
 * the loop looks at vmm and priv again before each client request, so a VM's
 * exit that is already waiting is handled before a later request about it.
 */
static void
on_child_message(evutil_socket_t fd, short what, void *arg)
{
	struct vmd_child *child = arg;
	struct vmd_env *env = child->env;
	const struct vmd_proc *p = &procs[child->id];
	static struct msg_buf buf;
	struct msg m;
	int rc;

	while ((rc = msg_recv(child->fd, &m, &buf)) > 0) {
		p->parent_dispatch(env, &m);
		msg_close_fds(&m);
		if (child == &env->control)
			return;
	}
	if (rc == 0)
		vmd_child_gone(child, NULL);
	if (errno != EAGAIN)
		fatal("%s process", child->name);
}

/* Starts the child of row id, passing what its row says. */
static void
vmd_spawn(struct vmd_env *env, enum proc_id id, int exe_fd, int control_sock)
{
	struct vmd_child *child = env->children[id];
	const struct vmd_proc *p = &procs[id];
	int pass_fd = p->passes == PROC_PASS_CONTROL_SOCKET ? control_sock
		      : p->passes == PROC_PASS_EXECUTABLE   ? exe_fd
							    : -1;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		fatal("socketpair");
	child->name = p->name;
	child->id = id;
	child->env = env;
	child->pid = proc_spawn(p->name, exe_fd, sv[1], pass_fd, env->opts.debug, env->opts.verbose);
	if (child->pid < 0)
		fatal("fork %s", p->name);
	close(sv[1]);
	child->fd = sv[0];
	child->env = env;
	child->ev = event_new(env->base, child->fd, EV_READ | EV_PERSIST, on_child_message, child);
	if (child->ev == NULL ||
	    event_priority_set(child->ev, child == &env->control ? VMD_PRIO_CLIENTS
								 : VMD_PRIO_CHILDREN) < 0 ||
	    event_add(child->ev, NULL) < 0 ||
	    msg_channel_init(&child->out, env->base, child->fd, VMD_CHILD_QUEUE_MAX,
			     on_child_write_error, child) < 0)
		fatalx("%s: cannot watch its socket", p->name);
}

/* Starts every child the parent spawns, in procs[] order. */
static void
vmd_spawn_children(struct vmd_env *env, int exe_fd, int control_sock)
{
	env->children[PROC_PRIV] = &env->priv;
	env->children[PROC_VMM] = &env->vmm;
	env->children[PROC_CONTROL] = &env->control;
	for (int id = 0; id < PROC_MAX; id++)
		if (env->children[id] != NULL)
			vmd_spawn(env, (enum proc_id)id, exe_fd, control_sock);
}

/* /run/vmd.sock, owned as `socket owner` says; refuses a live one. */
static int
vmd_open_socket(struct vmd_env *env)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const struct vm_owner *owner = &env->conf.globals.socket_owner;
	mode_t old;
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", VMD_SOCKET_PATH);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fatal("socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		fatalx("%s: vmd is already running", VMD_SOCKET_PATH);
	unlink(VMD_SOCKET_PATH);
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		fatal("%s", VMD_SOCKET_PATH);
	umask(old);
	if (chown(VMD_SOCKET_PATH, owner->uid == VM_ID_NONE ? 0 : owner->uid,
		  owner->gid == VM_ID_NONE ? 0 : owner->gid) < 0 ||
	    chmod(VMD_SOCKET_PATH, 0660) < 0)
		fatal("%s", VMD_SOCKET_PATH);
	if (listen(fd, 16) < 0)
		fatal("listen %s", VMD_SOCKET_PATH);
	env->control_addr_len = sizeof(env->control_addr);
	if (getsockname(fd, (struct sockaddr *)&env->control_addr, &env->control_addr_len) < 0)
		fatal("%s", VMD_SOCKET_PATH);
	return fd;
}

/* Exits once a shutdown has stopped every VM. */
void
vmd_check_shutdown(struct vmd_env *env)
{
	struct vmd_vm *vm;

	if (!env->shutting_down)
		return;
	TAILQ_FOREACH(vm, &env->vms, entry)
		if (vm->state != VM_STATE_STOPPED && vm->state != VM_STATE_WAITING)
			return;
	log_info("all VMs stopped; exiting");
	event_base_loopbreak(env->base);
}

static void
on_shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct vmd_env *env = arg;
	struct vmd_vm *vm;

	TAILQ_FOREACH(vm, &env->vms, entry)
		if (vm->state != VM_STATE_STOPPED && vm->state != VM_STATE_WAITING) {
			log_warnx("vm %s: still running: killing it", vm->params.name);
			vm_request_stop(env, vm, true);
		}
}

static void
on_terminate(evutil_socket_t sig, short what, void *arg)
{
	struct vmd_env *env = arg;
	struct timeval grace = { env->stop_timeout + 2, 0 };
	struct vmd_vm *vm;

	if (env->shutting_down)
		return;
	log_info("%s: stopping all VMs", strsignal((int)sig));
	env->shutting_down = true;
	TAILQ_FOREACH(vm, &env->vms, entry)
		vm_request_stop(env, vm, false);
	env->shutdown_timer = evtimer_new(env->base, on_shutdown_timeout, env);
	if (env->shutdown_timer)
		evtimer_add(env->shutdown_timer, &grace);
	vmd_check_shutdown(env);
}

static void
on_hangup(evutil_socket_t sig, short what, void *arg)
{
	struct vmd_env *env = arg;
	char err[1024];

	log_info("SIGHUP: reloading %s", env->opts.conf_path);
	if (vmd_load_config(env, env->opts.conf_path, true, err, sizeof(err)) < 0)
		log_warnx("reload: %s", err);
}

static void
on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct vmd_env *env = arg;
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (int id = 0; id < PROC_MAX; id++)
			if (env->children[id] != NULL && env->children[id]->pid == pid)
				vmd_child_gone(env->children[id], &status);
}

static void
vmd_setup_signals(struct vmd_env *env)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };

	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		event_callback_fn fn = sigs[i] == SIGHUP    ? on_hangup
				       : sigs[i] == SIGCHLD ? on_sigchld
							    : on_terminate;
		struct event *ev = evsignal_new(env->base, sigs[i], fn, env);

		if (ev == NULL || event_add(ev, NULL) < 0)
			fatalx("cannot handle signal %d", sigs[i]);
	}
}

static void
vmd_preflight(struct vmd_env *env)
{
	const char *timeout = getenv("VMD_STOP_TIMEOUT");

	if (geteuid() != 0) {
		fprintf(stderr, "vmd: must be run as root\n");
		exit(1);
	}
	if (proc_lookup_user(&env->vmd_uid, &env->vmd_gid) < 0) {
		fprintf(stderr,
			"vmd: no user %s; create it with:\n"
			"  useradd --system --no-create-home --home-dir %s --shell /usr/sbin/nologin %s\n",
			VMD_USER, VMD_EMPTY_DIR, VMD_USER);
		exit(1);
	}
	env->stop_timeout = VMD_STOP_TIMEOUT;
	if (timeout && atoi(timeout) > 0)
		env->stop_timeout = atoi(timeout);
	/* The empty directory that control and the VMs see as their root. */
	mkdir("/var/lib/vmd", 0755);
	if (mkdir(VMD_EMPTY_DIR, 0755) < 0 && errno != EEXIST)
		fatal("%s", VMD_EMPTY_DIR);
}

/* vmm and the VMs' identities: checked against every account, then handed to vmm (vmm_confine.h). */
static int
vmd_pass_uid_range(const struct vmd_globals *g, char *err, size_t errlen)
{
	char range[32];

	if (vmm_check_uid_range(g->uid_first, g->uid_count, err, errlen) < 0)
		return -1;
	snprintf(range, sizeof(range), "%u:%u", g->uid_first, g->uid_count);
	return setenv(VMD_UID_RANGE_ENV, range, 1);
}

int
vmd_main(int argc, char *argv[])
{
	static struct vmd_env env;
	char err[1024];
	int sock, exe;

	parse_options(argc, argv, &env.opts);
	if (env.opts.check_only)
		return vmd_check_config(&env.opts);
	vmd_preflight(&env);
	TAILQ_INIT(&env.vms);
	TAILQ_INIT(&env.peers);
	config_init(&env.conf);
	if (vmd_load_config(&env, env.opts.conf_path, true, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (vmd_pass_uid_range(&env.conf.globals, err, sizeof(err)) < 0) {
		fprintf(stderr, "vmd: %s\n", err);
		return 1;
	}
	log_init("vmd", env.opts.debug, env.opts.verbose);
	if (!env.opts.debug && daemon(0, 0) < 0)
		fatal("daemon");
	sock = vmd_open_socket(&env);
	exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (exe < 0)
		fatal("/proc/self/exe");
	env.base = event_base_new();
	if (env.base == NULL || event_base_priority_init(env.base, VMD_PRIO_COUNT) < 0)
		fatalx("event_base_new");
	vmd_setup_signals(&env);
	vmd_spawn_children(&env, exe, sock);
	close(sock);
	close(exe);
	/* Filters are inherited: the parent's comes once its children run. */
	if (procs[PROC_PARENT].confine() < 0)
		fatalx("cannot confine the parent");
	log_info("started");
	vmd_send_switches(&env);
	vm_stagger_start(&env);
	event_base_dispatch(env.base);
	for (int id = 0; id < PROC_MAX; id++)
		if (env.children[id] != NULL)
			kill(env.children[id]->pid, SIGTERM);
	unlink(VMD_SOCKET_PATH);
	return 0;
}
