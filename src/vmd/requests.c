/*
 * The parent's side of vmctl's requests (as control forwards them, with
 * the peer's credentials filled in) and of vmm's reports.  Every request
 * ends with one MSG_CTL_RESULT to its peer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "vmd/vmd.h"

#define ALL_CATEGORIES VM_ALLOW_CATEGORIES

/* Finds the request's VM and checks that the peer may act on it. */
static struct vmd_vm *
target_vm(struct vmd_env *env, uint32_t peer, const struct ctl_target *t)
{
	struct vmd_vm *vm = vm_find(env, t->id, t->name);

	if (vm == NULL) {
		if (t->id)
			vmd_reply(env, peer, ENOENT, 0, "%u: no such VM", t->id);
		else
			vmd_reply(env, peer, ENOENT, 0, "%s: no such VM", t->name);
		return NULL;
	}
	if (!vm_cred_may_control(&vm->params, &t->cred)) {
		vmd_reply(env, peer, EPERM, vm->id, "%s: permission denied", vm->params.name);
		return NULL;
	}
	return vm;
}

static bool
check_state(struct vmd_env *env, uint32_t peer, struct vmd_vm *vm, enum vm_action action)
{
	char why[128];

	if (vm_state_allows(vm->state, action, why, sizeof(why)) == 0)
		return true;
	vmd_reply(env, peer, EBUSY, vm->id, "%s: %s", vm->params.name, why);
	return false;
}

static bool
require_root(struct vmd_env *env, uint32_t peer, const struct ctl_cred *cred, const char *what)
{
	if (cred->uid == 0)
		return true;
	vmd_reply(env, peer, EPERM, 0, "%s: permission denied (root only)", what);
	return false;
}

/*
 * The command line's options over a VM's configuration: root may change
 * anything, the owner what the VM allows (as for an instance).
 */
static int
merge_overrides(const struct vm_params *base, struct vm_params *req, const struct ctl_cred *cred,
		char *err, size_t errlen)
{
	struct vm_params tmpl = *base;

	tmpl.template_name[0] = '\0';
	if (cred->uid == 0)
		tmpl.allow = ALL_CATEGORIES;
	if (vm_instantiate(&tmpl, req, err, errlen) < 0)
		return -1;
	memcpy(req->template_name, base->template_name, sizeof(req->template_name));
	req->allow = base->allow;
	req->instance_owner = base->instance_owner;
	req->enabled = base->enabled;
	return 0;
}

/*
 * An instance a user creates is hers: the template's owner (user or group)
 * does not carry over, so that the members of a template's owner group do
 * not control each other's instances -- unless the template says
 * `instance owner group`.  root's instances keep the template's owner, as
 * vm.conf's do.
 */
static void
own_instance(const struct vm_params *tmpl, struct vm_params *inst, const struct ctl_cred *cred)
{
	if (cred->uid == 0)
		return;
	inst->owner.uid = cred->uid;
	inst->owner.gid = (tmpl->allow & VM_INSTANCE_OWNER_GROUP) ? tmpl->owner.gid : VM_ID_NONE;
}

/* Finds or creates the VM that a start request names. */
static struct vmd_vm *
start_target(struct vmd_env *env, uint32_t peer, struct ctl_start *req)
{
	struct vm_params *p = &req->params;
	const struct vm_params *tmpl;
	struct vmd_vm *vm;
	char err[512];

	if (vm_check_request_nics(p, err, sizeof(err)) < 0) {
		vmd_reply(env, peer, EPERM, 0, "%s", err);
		return NULL;
	}
	if ((vm = vm_find(env, 0, p->name)) != NULL) {
		if (!vm_cred_may_control(&vm->params, &req->cred)) {
			vmd_reply(env, peer, EPERM, vm->id, "%s: permission denied", p->name);
			return NULL;
		}
		if (!check_state(env, peer, vm, VM_ACTION_START))
			return NULL;
		if (p->template_name[0] != '\0') {
			vmd_reply(env, peer, EEXIST, vm->id, "%s: a VM of that name exists", p->name);
			return NULL;
		}
		if (p->set != 0) {
			if (merge_overrides(&vm->params, p, &req->cred, err, sizeof(err)) < 0) {
				vmd_reply(env, peer, EPERM, vm->id, "%s", err);
				return NULL;
			}
			vm->params = *p;
		}
		return vm;
	}
	if (p->template_name[0] != '\0') {
		tmpl = config_find_vm(&env->conf, p->template_name);
		if (tmpl == NULL) {
			vmd_reply(env, peer, ENOENT, 0, "template %s: no such VM", p->template_name);
			return NULL;
		}
		if (!vm_cred_may_instantiate(tmpl, &req->cred)) {
			vmd_reply(env, peer, EPERM, 0, "template %s: permission denied",
				  p->template_name);
			return NULL;
		}
		if (vm_instantiate(tmpl, p, err, sizeof(err)) < 0) {
			vmd_reply(env, peer, EPERM, 0, "%s", err);
			return NULL;
		}
		own_instance(tmpl, p, &req->cred);
	} else if (req->cred.uid != 0) {
		vmd_reply(env, peer, EPERM, 0,
			  "%s: no such VM (only root may start VMs that vm.conf does not declare)",
			  p->name);
		return NULL;
	}
	vm_finish_nics(p);
	if ((vm = vm_add(env, p, false)) == NULL)
		vmd_reply(env, peer, ENOMEM, 0, "%s: out of memory", p->name);
	return vm;
}

/* Options given to vmctl start last one run; a start refused before any process existed is no run. */
static void
restore_config(struct vmd_env *env, struct vmd_vm *vm)
{
	const struct vm_params *p;

	if (!vm->removed && (p = config_find_vm(&env->conf, vm->params.name)) != NULL)
		vm->params = *p;
}

static void
handle_start(struct vmd_env *env, uint32_t peer, struct ctl_start *req)
{
	struct vmd_vm *vm = start_target(env, peer, req);
	char err[512];

	if (vm == NULL)
		return;
	if (vm_check_start_limit(env, vm, &req->cred, err, sizeof(err)) < 0) {
		vmd_reply(env, peer, EDQUOT, vm->id, "%s: %s", vm->params.name, err);
		if (vm->state == VM_STATE_STOPPED && !vm->from_config)
			vm_remove(env, vm);
		else if (vm->state == VM_STATE_STOPPED)
			restore_config(env, vm); /* a refused start's -d must not wait for the next one */
		return;
	}
	vm->opener = req->cred;
	vm->user_set = req->cred.uid != 0 ? req->params.set : 0;
	vm->boot_once = (req->params.set & VM_SET_BOOTDEV) != 0;
	vm->nreboots = 0;
	if (vm_launch(env, vm, err, sizeof(err)) < 0) {
		vmd_reply(env, peer, EINVAL, vm->id, "%s: %s", vm->params.name, err);
		if (vm->state == VM_STATE_STOPPED && !vm->from_config)
			vm_remove(env, vm);
		else if (vm->state == VM_STATE_STOPPED)
			restore_config(env, vm); /* a refused -k or -r must not stick */
		return;
	}
	log_info("vm %s: started by uid %u", vm->params.name, req->cred.uid);
	vmd_reply(env, peer, 0, vm->id, "%s: started", vm->params.name);
}

static void
add_waiter(struct vmd_env *env, uint32_t peer, struct vmd_vm *vm, bool stop_request)
{
	if (vm->nwaiters == VMD_MAX_WAITERS) {
		vmd_reply(env, peer, EBUSY, vm->id, "%s: too many waiters", vm->params.name);
		return;
	}
	vm->waiters[vm->nwaiters++] = (struct vm_waiter){ peer, stop_request };
}

static void
handle_stop(struct vmd_env *env, uint32_t peer, const struct ctl_target *t)
{
	struct vmd_vm *vm = target_vm(env, peer, t);
	bool force = t->flags & CTL_STOP_FORCE;

	if (vm == NULL || !check_state(env, peer, vm, VM_ACTION_STOP))
		return;
	log_info("vm %s: %s by uid %u", vm->params.name, force ? "killed" : "stop requested",
		 t->cred.uid);
	if (t->flags & CTL_STOP_WAIT)
		add_waiter(env, peer, vm, true);
	else
		vmd_reply(env, peer, 0, vm->id, "%s: %s", vm->params.name,
			  force ? "forced to stop" : "stopping");
	vm_request_stop(env, vm, force);
}

static void
handle_pause(struct vmd_env *env, uint32_t peer, const struct ctl_target *t, bool pause)
{
	struct vmd_vm *vm = target_vm(env, peer, t);
	struct msg_vm_event ev;

	if (vm == NULL ||
	    !check_state(env, peer, vm, pause ? VM_ACTION_PAUSE : VM_ACTION_UNPAUSE))
		return;
	if (vm->pause_peer != 0) {
		vmd_reply(env, peer, EBUSY, vm->id, "%s: busy", vm->params.name);
		return;
	}
	ev = (struct msg_vm_event){ vm->id, vm->pid, 0 };
	vm->pause_peer = peer;
	vmd_send_child(env, &env->vmm, pause ? MSG_VMM_PAUSE : MSG_VMM_UNPAUSE, vm->id, &ev,
		       sizeof(ev), NULL, 0);
}

static void
handle_wait(struct vmd_env *env, uint32_t peer, const struct ctl_target *t)
{
	struct vmd_vm *vm = target_vm(env, peer, t);

	if (vm == NULL)
		return;
	if (vm->state == VM_STATE_STOPPED)
		vmd_reply(env, peer, 0, vm->id, "%s: is not running", vm->params.name);
	else
		add_waiter(env, peer, vm, false);
}

/* Resident memory of a running VM, from /proc: the guest RAM it touched. */
static uint64_t
resident_memory(pid_t pid)
{
	char path[64];
	unsigned long long size, resident;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fscanf(f, "%llu %llu", &size, &resident);
	fclose(f);
	return n == 2 ? resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

static void
send_info(struct vmd_env *env, uint32_t peer, struct vmd_vm *vm)
{
	struct ctl_vm_info info = { 0 };

	info.id = vm->id;
	info.pid = vm->pid;
	info.cpus = vm->params.cpus;
	info.memory = vm->params.memory;
	info.cur_memory = vm->pid > 0 ? resident_memory(vm->pid) : 0;
	snprintf(info.tty, sizeof(info.tty), "%s", vm->tty[0] ? vm->tty : "-");
	vm_format_owner(&vm->params.owner, info.owner, sizeof(info.owner));
	if (info.owner[0] == '\0')
		snprintf(info.owner, sizeof(info.owner), "root");
	snprintf(info.state, sizeof(info.state), "%s", vm_state_name(vm->state));
	snprintf(info.name, sizeof(info.name), "%s", vm->params.name);
	vmd_send_child(env, &env->control, MSG_CTL_INFO, peer, &info, sizeof(info), NULL, 0);
}

static void
handle_status(struct vmd_env *env, uint32_t peer, const struct ctl_target *t)
{
	struct vmd_vm *vm;

	if (t->id != 0 || t->name[0] != '\0') {
		if ((vm = vm_find(env, t->id, t->name)) == NULL) {
			vmd_reply(env, peer, ENOENT, 0, "%s: no such VM", t->name[0] ? t->name : "id");
			return;
		}
		send_info(env, peer, vm);
	} else {
		TAILQ_FOREACH(vm, &env->vms, entry)
			if (!(t->flags & CTL_STATUS_RUNNING) || vm->state != VM_STATE_STOPPED)
				send_info(env, peer, vm);
	}
	vmd_reply(env, peer, 0, 0, "ok");
}

/* The console: a copy of the pty the parent holds for the VM (launch.c). */
static void
handle_console(struct vmd_env *env, uint32_t peer, const struct ctl_target *t)
{
	struct vmd_vm *vm = target_vm(env, peer, t);
	struct ctl_result r = { 0 };

	if (vm == NULL || !check_state(env, peer, vm, VM_ACTION_CONSOLE))
		return;
	if (vm->console_fd < 0) {
		vmd_reply(env, peer, EIO, vm->id, "%s: has no console", vm->params.name);
		return;
	}
	r.id = vm->id;
	snprintf(r.message, sizeof(r.message), "%s", vm->tty);
	vmd_send_child(env, &env->control, MSG_CTL_RESULT, peer, &r, sizeof(r), &vm->console_fd, 1);
}

static void
handle_reset(struct vmd_env *env, uint32_t peer, const struct ctl_target *t)
{
	struct vmd_vm *vm, *next;
	int stopped = 0;
	char err[1024];

	if (!require_root(env, peer, &t->cred, "reset"))
		return;
	if (t->flags & CTL_RESET_VMS) {
		TAILQ_FOREACH_SAFE(vm, &env->vms, entry, next) {
			if (vm->state == VM_STATE_STOPPED)
				continue;
			vm_request_stop(env, vm, true);
			stopped++;
		}
	}
	if (t->flags & CTL_RESET_SWITCHES) {
		if (vmd_reset_switches(env, err, sizeof(err)) < 0) {
			vmd_reply(env, peer, EINVAL, 0, "reset switches: %s", err);
			return;
		}
		if (!(t->flags & CTL_RESET_VMS)) {
			size_t n = 0;

			for (size_t i = 0; i < env->conf.nswitches; i++)
				n += env->conf.switches[i].enabled;
			vmd_reply(env, peer, 0, 0, "reset: %zu switch%s reset", n, n == 1 ? "" : "es");
			return;
		}
	}
	vmd_reply(env, peer, 0, 0, "reset: %d VM%s stopped", stopped, stopped == 1 ? "" : "s");
}

static void
handle_log(struct vmd_env *env, uint32_t peer, const struct ctl_target *t)
{
	struct msg_vm_event ev = { 0, 0, (int32_t)t->flags };

	if (!require_root(env, peer, &t->cred, "log"))
		return;
	env->opts.verbose = (int)t->flags;
	log_set_verbose(env->opts.verbose);
	vmd_send_child(env, &env->control, MSG_LOG_VERBOSE, 0, &ev, sizeof(ev), NULL, 0);
	vmd_send_child(env, &env->vmm, MSG_LOG_VERBOSE, 0, &ev, sizeof(ev), NULL, 0);
	vmd_reply(env, peer, 0, 0, "logging %s", t->flags ? "verbose" : "brief");
}

static void
handle_load(struct vmd_env *env, uint32_t peer, const struct ctl_cred *cred, const char *path,
	    bool replace)
{
	char err[1024];

	if (!require_root(env, peer, cred, replace ? "reload" : "load"))
		return;
	if (vmd_load_config(env, path, replace, err, sizeof(err)) < 0) {
		vmd_reply(env, peer, EINVAL, 0, "%s", err);
		return;
	}
	vmd_reply(env, peer, 0, 0, "%s: loaded", path);
}

void
vmd_dispatch_control(struct vmd_env *env, struct msg *m)
{
	static struct ctl_start start;
	struct ctl_target t;
	struct ctl_path p;
	uint32_t peer = m->hdr.peer_id;
	char err[512];

	if (m->hdr.type == MSG_CTL_START) {
		if (msg_read_ctl_start(m, &start, err, sizeof(err)) < 0)
			vmd_reply(env, peer, EINVAL, 0, "%s", err);
		else
			handle_start(env, peer, &start);
		return;
	}
	if (m->hdr.type == MSG_CTL_LOAD) {
		if (msg_read_ctl_path(m, &p) < 0)
			fatalx("malformed load request from control");
		handle_load(env, peer, &p.cred, p.path, false);
		return;
	}
	if (msg_read_ctl_target(m, &t) < 0)
		fatalx("unexpected %s message from control", msg_type_name(m->hdr.type));
	switch (m->hdr.type) {
	case MSG_CTL_STOP: handle_stop(env, peer, &t); break;
	case MSG_CTL_PAUSE: handle_pause(env, peer, &t, true); break;
	case MSG_CTL_UNPAUSE: handle_pause(env, peer, &t, false); break;
	case MSG_CTL_WAIT: handle_wait(env, peer, &t); break;
	case MSG_CTL_STATUS: handle_status(env, peer, &t); break;
	case MSG_CTL_CONSOLE: handle_console(env, peer, &t); break;
	case MSG_CTL_RELOAD: handle_load(env, peer, &t.cred, env->opts.conf_path, true); break;
	case MSG_CTL_RESET: handle_reset(env, peer, &t); break;
	case MSG_CTL_LOG: handle_log(env, peer, &t); break;
	}
}

static void
pause_reply(struct vmd_env *env, struct vmd_vm *vm, const struct msg_vm_event *ev, bool pause)
{
	uint32_t peer = vm->pause_peer;

	vm->pause_peer = 0;
	if (ev->status == 0 && (vm->state == VM_STATE_RUNNING || vm->state == VM_STATE_PAUSED))
		vm->state = pause ? VM_STATE_PAUSED : VM_STATE_RUNNING;
	if (peer == 0)
		return;
	if (ev->status != 0)
		vmd_reply(env, peer, ev->status, vm->id, "%s: cannot %s: %s", vm->params.name,
			  pause ? "pause" : "unpause", strerror(ev->status));
	else
		vmd_reply(env, peer, 0, vm->id, "%s: %s", vm->params.name,
			  pause ? "paused" : "unpaused");
}

void
vmd_dispatch_vmm(struct vmd_env *env, struct msg *m)
{
	struct msg_vm_event ev;
	struct vmd_vm *vm;

	if (msg_read_vm_event(m, &ev) < 0)
		fatalx("unexpected %s message from vmm", msg_type_name(m->hdr.type));
	if ((vm = vm_find_id(env, ev.vm_id)) == NULL) {
		log_debug("%s for VM %u, which is gone", msg_type_name(m->hdr.type), ev.vm_id);
		return;
	}
	switch (m->hdr.type) {
	case MSG_VMM_STARTED:
		vm->pid = ev.pid;
		if (vm->state == VM_STATE_STARTING)
			vm->state = VM_STATE_RUNNING;
		break;
	case MSG_VMM_EXITED:
		vm_exited(env, vm, ev.status);
		break;
	case MSG_VMM_PAUSED:
	case MSG_VMM_UNPAUSED:
		pause_reply(env, vm, &ev, m->hdr.type == MSG_VMM_PAUSED);
		break;
	default:
		fatalx("unexpected %s message from vmm", msg_type_name(m->hdr.type));
	}
}

/* Brings the registry in line with a (re)loaded configuration. */
static void
sync_registry(struct vmd_env *env, bool replace)
{
	struct vmd_vm *vm, *next;
	struct vm_params *p;

	TAILQ_FOREACH_SAFE(vm, &env->vms, entry, next) {
		if (!vm->from_config)
			continue;
		p = config_find_vm(&env->conf, vm->params.name);
		if (p == NULL && replace) {
			if (vm->state == VM_STATE_STOPPED || vm->state == VM_STATE_WAITING) {
				vm_remove(env, vm);
				continue;
			}
			vm->removed = true;
		} else if (p != NULL) {
			vm->removed = false; /* back in the file before it stopped: keep it */
			if (vm->state == VM_STATE_STOPPED)
				vm->params = *p;
		}
	}
	for (size_t i = 0; i < env->conf.nvms; i++) {
		p = &env->conf.vms[i];
		if (vm_find(env, 0, p->name) != NULL)
			continue;
		vm = vm_add(env, p, true);
		if (vm && p->enabled)
			vm->state = VM_STATE_WAITING;
	}
}

int
vmd_load_config(struct vmd_env *env, const char *path, bool replace, char *err, size_t errlen)
{
	struct config_options copts = { env->opts.defines, env->opts.ndefines, false };
	struct vmd_config conf;
	struct vm_switch *old_switches = NULL; /* replaced: which ones went, for priv */
	size_t nold = 0;

	if (config_parse_file(&conf, path, &copts, err, errlen) < 0)
		return -1;
	if (replace) {
		old_switches = env->conf.switches;
		nold = env->conf.nswitches;
		env->conf.switches = NULL;
		config_free(&env->conf);
		env->conf = conf;
	} else {
		for (size_t i = 0; i < conf.nvms; i++) {
			struct vm_params *old = config_find_vm(&env->conf, conf.vms[i].name);

			if (old)
				*old = conf.vms[i];
			else if (config_add_vm(&env->conf, &conf.vms[i]) < 0)
				log_warnx("load %s: cannot add vm %s", path, conf.vms[i].name);
		}
		for (size_t i = 0; i < conf.nswitches; i++)
			if (config_find_switch(&env->conf, conf.switches[i].name) == NULL)
				config_add_switch(&env->conf, &conf.switches[i]);
		config_free(&conf);
	}
	sync_registry(env, replace);
	if (env->base) {
		vmd_reload_switches(env, old_switches, nold);
		vm_stagger_start(env);
	}
	free(old_switches);
	return 0;
}
