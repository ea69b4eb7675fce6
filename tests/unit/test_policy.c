/*
 * Issue 11's registry rules: what a user runs counts against her
 * `limit user` (VMs she started that have not stopped), root is never
 * limited, and an instance's owner group controls it only when given.
 */
#include <stdlib.h>
#include <string.h>

#include "unit/check.h"
#include "vmd/vmd.h"

#define ERR err, sizeof(err)
static char err[512];

static struct vmd_vm *
add_running(struct vmd_env *env, const char *name, uint32_t uid, uint32_t cpus,
	    uint64_t memory, enum vm_state state)
{
	struct vm_params p;
	struct vmd_vm *vm;

	vm_params_init(&p, name);
	p.cpus = cpus;
	p.memory = memory;
	vm = vm_add(env, &p, true);
	vm->opener.uid = uid;
	vm->state = state;
	return vm;
}

static void
usage_counts_what_a_user_started_and_runs(void)
{
	static struct vmd_env env;
	struct vmd_usage u;
	struct ctl_cred alice = { 1000, 1000, 1 }, root = { 0, 0, 1 };
	struct vmd_vm *next;

	TAILQ_INIT(&env.vms);
	vmd_globals_init(&env.conf.globals);
	env.conf.globals.user_limit.vms = 2;
	env.conf.globals.user_limit.set = VMD_LIMIT_VMS;
	add_running(&env, "a", 1000, 2, 1ULL << 30, VM_STATE_RUNNING);
	add_running(&env, "b", 1000, 1, 1ULL << 30, VM_STATE_PAUSED);
	add_running(&env, "c", 1000, 4, 4ULL << 30, VM_STATE_STOPPED); /* counts for nobody */
	add_running(&env, "d", 0, 8, 8ULL << 30, VM_STATE_RUNNING);	/* root's */
	next = add_running(&env, "e", 1001, 1, 1ULL << 20, VM_STATE_STOPPED);

	vm_user_usage(&env, 1000, &u);
	CHECK(u.vms == 2 && u.cpus == 3 && u.memory == 2ULL << 30);
	CHECK(vm_check_start_limit(&env, next, &alice, ERR) == -1);
	CHECK(strstr(err, "already runs 2 VMs (limit 2)") != NULL);
	CHECK(vm_check_start_limit(&env, next, &root, ERR) == 0);
	vm_find(&env, 0, "b")->state = VM_STATE_STOPPED;
	CHECK(vm_check_start_limit(&env, next, &alice, ERR) == 0);
	while (!TAILQ_EMPTY(&env.vms))
		vm_remove(&env, TAILQ_FIRST(&env.vms));
}

static void
an_instance_is_its_creators(void)
{
	struct vm_params inst;
	uint32_t staff[] = { 1000, 50 };

	vm_params_init(&inst, "i");
	inst.owner = (struct vm_owner){ 1000, VM_ID_NONE }; /* as start_target makes it */
	CHECK(vm_may_control(&inst, 1000, staff, 1));
	CHECK(!vm_may_control(&inst, 1001, staff, 2)); /* another member of group 50 */
	inst.owner.gid = 50;				/* instance owner group */
	CHECK(vm_may_control(&inst, 1001, staff, 2));
}

int
main(void)
{
	RUN_TEST(usage_counts_what_a_user_started_and_runs);
	RUN_TEST(an_instance_is_its_creators);
	TEST_EXIT();
}
