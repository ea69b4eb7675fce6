/*
 * The parent's registry of VMs, and the rules about them that need no
 * process around them: what each state allows, who may control a VM, when a
 * rebooting VM has rebooted too often.
 */
#include <errno.h>
#include <event2/event.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "vmd/vmd.h"

struct vmd_vm *
vm_find_id(struct vmd_env *env, uint32_t id)
{
	struct vmd_vm *vm;

	TAILQ_FOREACH(vm, &env->vms, entry)
		if (vm->id == id)
			return vm;
	return NULL;
}

/* By id when id is not 0, else by name. */
struct vmd_vm *
vm_find(struct vmd_env *env, uint32_t id, const char *name)
{
	struct vmd_vm *vm;

	if (id != 0)
		return vm_find_id(env, id);
	TAILQ_FOREACH(vm, &env->vms, entry)
		if (strcmp(vm->params.name, name) == 0)
			return vm;
	return NULL;
}

struct vmd_vm *
vm_add(struct vmd_env *env, const struct vm_params *params, bool from_config)
{
	struct vmd_vm *vm = calloc(1, sizeof(*vm));

	if (vm == NULL)
		return NULL;
	vm->env = env;
	vm->id = ++env->next_id;
	vm->params = *params;
	vm->from_config = from_config;
	vm->state = VM_STATE_STOPPED;
	vm->console_fd = -1;
	vm->opener.uid = 0;
	TAILQ_INSERT_TAIL(&env->vms, vm, entry);
	return vm;
}

void
vm_remove(struct vmd_env *env, struct vmd_vm *vm)
{
	TAILQ_REMOVE(&env->vms, vm, entry);
	if (vm->stop_timer)
		event_free(vm->stop_timer);
	free(vm);
}

const char *
vm_state_name(enum vm_state state)
{
	switch (state) {
	case VM_STATE_STOPPED: return "stopped";
	case VM_STATE_WAITING: return "waiting";
	case VM_STATE_STARTING: return "starting";
	case VM_STATE_RUNNING: return "running";
	case VM_STATE_PAUSED: return "paused";
	case VM_STATE_STOPPING: return "stopping";
	}
	return "unknown";
}

/*
 * The lifecycle's transitions, as the requests see them.  Returns 0 when the
 * action may go ahead in this state, else -1 with the reason in err.
 */
int
vm_state_allows(enum vm_state state, enum vm_action action, char *err, size_t errlen)
{
	const char *why = NULL;

	switch (action) {
	case VM_ACTION_START:
		if (state != VM_STATE_STOPPED && state != VM_STATE_WAITING)
			why = "is already running";
		break;
	case VM_ACTION_STOP:
		if (state == VM_STATE_STOPPED)
			why = "is not running";
		break;
	case VM_ACTION_PAUSE:
		if (state == VM_STATE_PAUSED)
			why = "is already paused";
		else if (state != VM_STATE_RUNNING)
			why = "is not running";
		break;
	case VM_ACTION_UNPAUSE:
		if (state != VM_STATE_PAUSED)
			why = "is not paused";
		break;
	case VM_ACTION_CONSOLE:
		/* Starting counts: its pty exists, and `vmctl start -c` attaches at once. */
		if (state != VM_STATE_STARTING && state != VM_STATE_RUNNING && state != VM_STATE_PAUSED &&
		    state != VM_STATE_STOPPING)
			why = "is not running";
		break;
	}
	if (why == NULL)
		return 0;
	snprintf(err, errlen, "%s", why);
	return -1;
}

static bool
owner_matches(const struct vm_owner *owner, uint32_t uid, const uint32_t *gids, int ngids)
{
	if (owner->uid != VM_ID_NONE && owner->uid == uid)
		return true;
	if (owner->gid == VM_ID_NONE)
		return false;
	for (int i = 0; i < ngids; i++)
		if (gids[i] == owner->gid)
			return true;
	return false;
}

/* root, the VM's owner, or a member of its owner group. */
bool
vm_may_control(const struct vm_params *params, uint32_t uid, const uint32_t *gids, int ngids)
{
	return uid == 0 || owner_matches(&params->owner, uid, gids, ngids);
}

/* The user's groups: the primary one from the peer, and the supplementary ones. */
static int
cred_groups(const struct ctl_cred *cred, uint32_t *gids, int max)
{
	struct passwd *pw = getpwuid(cred->uid);
	gid_t groups[NGROUPS_MAX];
	int n = NGROUPS_MAX;

	gids[0] = cred->gid;
	if (pw == NULL || getgrouplist(pw->pw_name, cred->gid, groups, &n) < 0)
		return 1;
	if (n > max - 1)
		n = max - 1;
	for (int i = 0; i < n; i++)
		gids[i + 1] = groups[i];
	return n + 1;
}

bool
vm_cred_may_control(const struct vm_params *params, const struct ctl_cred *cred)
{
	uint32_t gids[64];
	int n;

	if (cred->uid == 0)
		return true;
	n = cred_groups(cred, gids, 64);
	return vm_may_control(params, cred->uid, gids, n);
}

bool
vm_cred_may_instantiate(const struct vm_params *tmpl, const struct ctl_cred *cred)
{
	uint32_t gids[64];
	int n;

	if (cred->uid == 0)
		return true;
	n = cred_groups(cred, gids, 64);
	return owner_matches(&tmpl->instance_owner, cred->uid, gids, n);
}

/* Whether the VM holds its memory and vCPUs: started, and not yet stopped. */
static bool
vm_is_running(const struct vmd_vm *vm)
{
	return vm->state != VM_STATE_STOPPED && vm->state != VM_STATE_WAITING;
}

/* What the VMs that uid started, and that have not stopped, hold. */
void
vm_user_usage(const struct vmd_env *env, uint32_t uid, struct vmd_usage *out)
{
	const struct vmd_vm *vm;

	*out = (struct vmd_usage){ 0 };
	TAILQ_FOREACH(vm, &env->vms, entry) {
		if (!vm_is_running(vm) || vm->opener.uid != uid)
			continue;
		out->vms++;
		out->cpus += vm->params.cpus;
		out->memory += vm->params.memory;
	}
}

/*
 * `limit user`: whether the user may start vm now, on top of what she
 * runs.  root is never limited.
 */
int
vm_check_start_limit(const struct vmd_env *env, const struct vmd_vm *vm,
		     const struct ctl_cred *cred, char *err, size_t errlen)
{
	struct vmd_usage used, more = { 1, vm->params.cpus, vm->params.memory };
	struct vmd_user_limit limit;
	struct passwd *pw;
	char user[64];

	if (cred->uid == 0)
		return 0;
	vm_user_usage(env, cred->uid, &used);
	limit = vmd_user_limit_for(&env->conf.globals, cred->uid);
	if ((pw = getpwuid(cred->uid)) != NULL && strlen(pw->pw_name) < sizeof(user))
		snprintf(user, sizeof(user), "%s", pw->pw_name);
	else
		snprintf(user, sizeof(user), "%u", cred->uid);
	return vmd_check_user_limit(&limit, &used, &more, user, err, errlen);
}

/*
 * Records a reboot at now; false when it makes more than VMD_REBOOT_LIMIT
 * within VMD_REBOOT_WINDOW seconds (a reboot loop).
 */
bool
vm_reboot_allowed(struct vmd_vm *vm, time_t now)
{
	int kept = 0;

	for (int i = 0; i < vm->nreboots; i++)
		if (now - vm->reboots[i] < VMD_REBOOT_WINDOW)
			vm->reboots[kept++] = vm->reboots[i];
	vm->nreboots = kept;
	if (vm->nreboots >= VMD_REBOOT_LIMIT)
		return false;
	vm->reboots[vm->nreboots++] = now;
	return true;
}

/*
 * A VM given on the command line: a number is an id, anything else a
 * name.  Returns 0, or -1 for text that is neither.
 */
int
vm_resolve_target(const char *text, uint32_t *id, char *name, size_t namelen)
{
	char *end;
	unsigned long n;

	*id = 0;
	name[0] = '\0';
	if (text[0] >= '0' && text[0] <= '9') {
		errno = 0;
		n = strtoul(text, &end, 10);
		if (*end == '\0' && errno == 0 && n > 0 && n <= UINT32_MAX) {
			*id = (uint32_t)n;
			return 0;
		}
	}
	if (text[0] == '\0' || strlen(text) >= namelen)
		return -1;
	snprintf(name, namelen, "%s", text);
	return 0;
}
