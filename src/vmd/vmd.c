/*
 * The parent process: reads vm.conf, keeps the registry of VMs, opens what
 * they need, and starts the other processes (control, vmm, priv) as
 * re-executed children connected by socketpairs.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
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
	if (msg_send(child->fd, type, peer, data, len, fds, nfds) < 0)
		fatal("cannot send %s to the %s process", msg_type_name(type), child->name);
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

/* Reads every message waiting on a child's socket; its end is the daemon's. */
static void
on_child_message(evutil_socket_t fd, short what, void *arg)
{
	struct vmd_env *env = arg;
	struct vmd_child *child = fd == env->control.fd ? &env->control
				  : fd == env->vmm.fd	 ? &env->vmm
							 : &env->priv;
	static struct msg_buf buf;
	struct msg m;
	int rc;

	while ((rc = msg_recv((int)fd, &m, &buf)) > 0) {
		if (child == &env->control)
			vmd_dispatch_control(env, &m);
		else if (child == &env->vmm)
			vmd_dispatch_vmm(env, &m);
		else if (m.hdr.type == MSG_PRIV_TAP)
			log_debug("a late tap from priv: closed"); /* its launch gave up */
		else
			fatalx("unexpected %s from the priv process", msg_type_name(m.hdr.type));
		msg_close_fds(&m);
	}
	if (rc == 0)
		fatalx("the %s process exited", child->name);
	if (errno != EAGAIN)
		fatal("%s process", child->name);
}

static void
vmd_spawn(struct vmd_env *env, struct vmd_child *child, const char *name, int exe_fd,
	  int pass_fd)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		fatal("socketpair");
	child->name = name;
	child->pid = proc_spawn(name, exe_fd, sv[1], pass_fd, env->opts.debug, env->opts.verbose);
	if (child->pid < 0)
		fatal("fork %s", name);
	close(sv[1]);
	child->fd = sv[0];
	child->ev = event_new(env->base, child->fd, EV_READ | EV_PERSIST, on_child_message, env);
	if (child->ev == NULL || event_add(child->ev, NULL) < 0)
		fatalx("%s: cannot watch its socket", name);
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
		if (pid == env->control.pid || pid == env->vmm.pid || pid == env->priv.pid)
			fatalx("the %s process died",
			       pid == env->control.pid ? "control"
			       : pid == env->vmm.pid   ? "vmm"
						       : "priv");
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
	if (env.base == NULL)
		fatalx("event_base_new");
	vmd_setup_signals(&env);
	vmd_spawn(&env, &env.priv, "priv", exe, -1);
	vmd_spawn(&env, &env.vmm, "vmm", exe, exe);
	vmd_spawn(&env, &env.control, "control", exe, sock);
	close(sock);
	log_info("started");
	vmd_send_switches(&env);
	vm_stagger_start(&env);
	event_base_dispatch(env.base);
	kill(env.control.pid, SIGTERM);
	kill(env.vmm.pid, SIGTERM);
	kill(env.priv.pid, SIGTERM);
	unlink(VMD_SOCKET_PATH);
	return 0;
}
