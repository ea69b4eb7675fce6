/* The configuration model's setters and the parser's API, under ASan/UBSan. */
#include <stdlib.h>
#include <string.h>

#include "common/vmconf.h"
#include "unit/check.h"
#include "vmd/config.h"

static char err[1024];
#define ERR err, sizeof(err)

static void
sizes_parse_exactly(void)
{
	uint64_t b;

	CHECK(vm_parse_size("4.5G", &b) == 0 && b == 4608ULL << 20);
	CHECK(vm_parse_size("4.5g", &b) == 0 && b == 4608ULL << 20);
	CHECK(vm_parse_size("0.5K", &b) == 0 && b == 512);
	CHECK(vm_parse_size("1", &b) == 0 && b == 1);
	CHECK(vm_parse_size("1T", &b) == 0 && b == 1ULL << 40);
	CHECK(vm_parse_size("18446744073709551615", &b) == 0 && b == UINT64_MAX);
	CHECK(vm_parse_size("18446744073709551616", &b) == -1);
	CHECK(vm_parse_size("16777216T", &b) == -1); /* 2^64 */
	CHECK(vm_parse_size("1.5", &b) == -1);	   /* a fraction of a byte */
	CHECK(vm_parse_size("1.G", &b) == -1);
	CHECK(vm_parse_size("", &b) == -1);
	CHECK(vm_parse_size("G", &b) == -1);
	CHECK(vm_parse_size("1GB", &b) == -1);
	CHECK(vm_parse_size("-1M", &b) == -1);
}

static void
memory_is_checked_and_rounded_to_megabytes(void)
{
	struct vm_params *vm = malloc(sizeof(*vm));

	vm_params_init(vm, "a");
	CHECK(vm->memory == VM_MEMORY_DEFAULT && vm->set == 0);
	CHECK(vm_set_memory(vm, "1023K", ERR) == -1);
	CHECK(strcmp(err, "memory 1023K is below the 1M minimum") == 0);
	CHECK(vm_set_memory(vm, "2T", ERR) == -1);
	CHECK(strcmp(err, "memory 2T is above the 1T maximum") == 0);
	CHECK(vm_set_memory(vm, "1048577", ERR) == 0 && vm->memory == 2ULL << 20);
	CHECK(vm->set & VM_SET_MEMORY);
	free(vm);
}

static void
lladdrs_must_be_six_unicast_octets(void)
{
	uint8_t mac[6];

	CHECK(vm_parse_lladdr("FE:e1:ba:d0:00:01", mac, ERR) == 0);
	CHECK(mac[0] == 0xfe && mac[1] == 0xe1 && mac[5] == 0x01);
	CHECK(vm_parse_lladdr("fe:e1:ba:d0:00:01:02", mac, ERR) == -1);
	CHECK(vm_parse_lladdr("fe:e1:ba:d0:00", mac, ERR) == -1);
	CHECK(vm_parse_lladdr("fe-e1-ba-d0-00-01", mac, ERR) == -1);
	CHECK(vm_parse_lladdr("01:00:5e:00:00:01", mac, ERR) == -1);
	CHECK(strstr(err, "multicast") != NULL);
	CHECK(vm_parse_lladdr("00:00:00:00:00:00", mac, ERR) == -1);
}

static void
owners_take_names_and_numbers(void)
{
	struct vm_owner o;

	CHECK(vm_parse_owner("root", &o, ERR) == 0 && o.uid == 0 && o.gid == VM_ID_NONE);
	CHECK(vm_parse_owner(":root", &o, ERR) == 0 && o.uid == VM_ID_NONE && o.gid == 0);
	CHECK(vm_parse_owner("4000000:7", &o, ERR) == 0 && o.uid == 4000000 && o.gid == 7);
	CHECK(vm_parse_owner("", &o, ERR) == -1);
	CHECK(vm_parse_owner(":", &o, ERR) == -1);
	CHECK(vm_parse_owner("no-such-user-here", &o, ERR) == -1);
	CHECK(strcmp(err, "unknown user \"no-such-user-here\"") == 0);
	CHECK(vm_parse_owner("4294967295", &o, ERR) == -1); /* that is "no id" */
}

static void
instances_change_only_what_is_allowed(void)
{
	struct vm_params *t = malloc(sizeof(*t)), *i = malloc(sizeof(*i));

	vm_params_init(t, "t");
	CHECK(vm_set_memory(t, "1G", ERR) == 0);
	CHECK(vm_add_disk(t, "/base.img", NULL, false, ERR) == 0);
	t->allow = VM_ALLOW_MEMORY;

	vm_params_init(i, "i");
	CHECK(vm_set_memory(i, "768M", ERR) == 0);
	CHECK(vm_instantiate(t, i, ERR) == 0);
	CHECK(i->memory == 768ULL << 20 && i->ndisks == 1);
	CHECK(strcmp(i->disks[0].path, "/base.img") == 0);
	CHECK(strcmp(i->template_name, "t") == 0);

	/* The same value is no change; a different one is refused. */
	vm_params_init(i, "i");
	CHECK(vm_add_disk(i, "/base.img", NULL, false, ERR) == 0);
	CHECK(vm_instantiate(t, i, ERR) == 0);
	vm_params_init(i, "i");
	CHECK(vm_add_disk(i, "/base.img", "raw", false, ERR) == 0);
	CHECK(vm_instantiate(t, i, ERR) == -1);
	CHECK(strcmp(err, "vm \"i\": template \"t\" does not allow instances to change disk") ==
	      0);
	free(t);
	free(i);
}

/* Issue 11: an instance may not add interfaces (`interfaces N`, vmctl -i N) unless allowed. */
static void
instances_compare_the_interface_count(void)
{
	struct vm_params *t = malloc(sizeof(*t)), *i = malloc(sizeof(*i));
	struct vm_nic nic = { 0 };

	vm_params_init(t, "t");
	t->allow = VM_ALLOW_MEMORY;
	vm_params_init(i, "i");
	CHECK(vm_set_min_nics(i, 3, ERR) == 0);
	CHECK(vm_instantiate(t, i, ERR) == -1);
	CHECK(strcmp(err, "vm \"i\": template \"t\" does not allow instances to change "
		      "interface") == 0);
	/* The same count as the template's is no change. */
	CHECK(vm_add_nic(t, &nic, ERR) == 0);
	vm_params_init(i, "i");
	CHECK(vm_set_min_nics(i, 1, ERR) == 0);
	CHECK(vm_instantiate(t, i, ERR) == 0 && i->nnics == 1);
	t->allow |= VM_ALLOW_INTERFACE;
	vm_params_init(i, "i");
	CHECK(vm_set_min_nics(i, 4, ERR) == 0);
	CHECK(vm_instantiate(t, i, ERR) == 0 && i->nnics == 4);
	free(t);
	free(i);
}

static void
start_requests_name_no_taps_or_groups(void)
{
	struct vm_params *vm = malloc(sizeof(*vm));
	struct vm_nic nic = { 0 };

	vm_params_init(vm, "a");
	snprintf(nic.switch_name, sizeof(nic.switch_name), "lan");
	CHECK(vm_add_nic(vm, &nic, ERR) == 0);
	CHECK(vm_check_request_nics(vm, ERR) == 0);
	snprintf(vm->nics[0].ifname, sizeof(vm->nics[0].ifname), "eth0");
	CHECK(vm_check_request_nics(vm, ERR) == -1);
	CHECK(strstr(err, "cannot name the tap (\"eth0\")") != NULL);
	vm->nics[0].ifname[0] = '\0';
	snprintf(vm->nics[0].group, sizeof(vm->nics[0].group), "trusted");
	CHECK(vm_check_request_nics(vm, ERR) == -1);
	CHECK(strstr(err, "cannot set a group") != NULL);
	free(vm);
}

static void
received_interfaces_have_plain_names(void)
{
	struct vm_params *vm = malloc(sizeof(*vm));
	struct vm_nic nic = { 0 };

	vm_params_init(vm, "a");
	CHECK(vm_add_nic(vm, &nic, ERR) == 0);
	snprintf(vm->nics[0].ifname, sizeof(vm->nics[0].ifname), "a/b");
	CHECK(vm_params_check_received(vm, ERR) == -1);
	snprintf(vm->nics[0].ifname, sizeof(vm->nics[0].ifname), "tap0");
	snprintf(vm->nics[0].group, sizeof(vm->nics[0].group), "g p");
	CHECK(vm_params_check_received(vm, ERR) == -1);
	vm->nics[0].group[0] = '\0';
	vm->nics[0].flags = 0x80;
	CHECK(vm_params_check_received(vm, ERR) == -1);
	vm->nics[0].flags = VM_NIC_LOCAL;
	snprintf(vm->nics[0].switch_name, sizeof(vm->nics[0].switch_name), "lan");
	CHECK(vm_params_check_received(vm, ERR) == -1);
	vm->nics[0].flags = 0;
	CHECK(vm_params_check_received(vm, ERR) == 0);
	free(vm);
}

static void
user_limits_add_up(void)
{
	struct vmd_globals *g = malloc(sizeof(*g));
	struct vmd_user_limit l;
	struct vmd_usage used = { 8, 8, 8ULL << 30 }, one = { 1, 1, 1ULL << 30 };

	vmd_globals_init(g);
	l = vmd_user_limit_for(g, 1000);
	CHECK(l.vms == 8 && l.cpus == 32 && l.memory == 16ULL << 30);
	CHECK(vmd_check_user_limit(&l, &used, &one, "alice", ERR) == -1);
	CHECK(strcmp(err, "user alice already runs 8 VMs (limit 8)") == 0);
	used.vms = 7;
	CHECK(vmd_check_user_limit(&l, &used, &one, "alice", ERR) == 0);
	used.memory = 15ULL << 30;
	one.memory = 2ULL << 30;
	CHECK(vmd_check_user_limit(&l, &used, &one, "alice", ERR) == -1);
	CHECK(strcmp(err, "user alice already runs 15G of memory; 2G more is over the limit "
		      "of 16G") == 0);
	used.memory = 0;
	used.cpus = 30;
	one.cpus = 4;
	CHECK(vmd_check_user_limit(&l, &used, &one, "alice", ERR) == -1);
	CHECK(strcmp(err, "user alice already runs 30 vCPUs; 4 more is over the limit of 32") ==
	      0);
	/* A user's own entry over the default, which is over the built-in one. */
	CHECK(vm_set_user_limit(&g->user_limit, VMD_LIMIT_VMS, 2, NULL, ERR) == 0);
	CHECK(vm_set_user_limit(&g->user_limit, VMD_LIMIT_VMS, 3, NULL, ERR) == -1);
	g->user_limits[0] = (struct vmd_user_limit){ .uid = 1001 };
	g->nuser_limits = 1;
	CHECK(vm_set_user_limit(&g->user_limits[0], VMD_LIMIT_MEMORY, 0, "64G", ERR) == 0);
	l = vmd_user_limit_for(g, 1001);
	CHECK(l.vms == 2 && l.cpus == 32 && l.memory == 64ULL << 30);
	l = vmd_user_limit_for(g, 1000);
	CHECK(l.vms == 2 && l.memory == 16ULL << 30);
	CHECK(vm_set_user_limit(&g->user_limit, VMD_LIMIT_CPUS, -1, NULL, ERR) == -1);
	CHECK(vm_set_user_limit(&g->user_limit, VMD_LIMIT_MEMORY, 0, "lots", ERR) == -1);
	/* Overflow does not wrap: a huge VM is over any limit. */
	used = (struct vmd_usage){ 0, 0, 1 };
	one = (struct vmd_usage){ 1, 1, UINT64_MAX };
	CHECK(vmd_check_user_limit(&l, &used, &one, "alice", ERR) == -1);
	free(g);
}

static void
limits_hold(void)
{
	struct vm_params *vm = malloc(sizeof(*vm));
	struct vm_nic nic = { 0 };

	vm_params_init(vm, "a");
	for (int n = 0; n < VM_MAX_DISKS; n++)
		CHECK(vm_add_disk(vm, "/d", NULL, false, ERR) == 0);
	CHECK(vm_add_disk(vm, "/d", NULL, false, ERR) == -1);
	for (int n = 0; n < VM_MAX_NICS; n++)
		CHECK(vm_add_nic(vm, &nic, ERR) == 0);
	CHECK(vm_add_nic(vm, &nic, ERR) == -1);
	CHECK(vm_set_cpus(vm, VM_MAX_CPUS, ERR) == 0 && vm_set_cpus(vm, 255, ERR) == -1);
	CHECK(vm_check_name("vm", "a.b-c_9", ERR) == 0);
	CHECK(vm_check_name("vm", "_a", ERR) == -1);
	free(vm);
}

static void
parse_buffer_reports_file_and_line(void)
{
	static const char text[] = "vm \"a\" {\n\tmemory 1G\n\tcpus 0\n}\n";
	struct vmd_config conf;

	CHECK(config_parse_buffer(&conf, "buf.conf", text, strlen(text), NULL, ERR) == -1);
	CHECK(strcmp(err, "buf.conf:3: cpus 0 is out of range (1 to 254)") == 0);
	CHECK(conf.nvms == 0 && conf.vms == NULL);
}

static void
defines_override_the_file(void)
{
	static const char text[] = "m = 1G\nvm \"a\" { memory $m, disk $d }\n";
	const char *defines[] = { "m=640M", "d=/x" };
	struct config_options opts = { defines, 2, false };
	struct vmd_config conf;

	CHECK(config_parse_buffer(&conf, "b", text, strlen(text), &opts, ERR) == 0);
	CHECK(conf.nvms == 1 && conf.vms[0].memory == 640ULL << 20);
	CHECK(conf.vms[0].ndisks == 1 && strcmp(conf.vms[0].disks[0].path, "/x") == 0);
	config_free(&conf);
	opts.ndefines = 1;
	CHECK(config_parse_buffer(&conf, "b", text, strlen(text), &opts, ERR) == -1);
	CHECK(strcmp(err, "b:2: undefined macro $d") == 0);
	defines[0] = "9=1";
	CHECK(config_parse_buffer(&conf, "b", text, strlen(text), &opts, ERR) == -1);
}

static void
includes_can_be_refused(void)
{
	static const char text[] = "include \"/etc/passwd\"\n";
	struct config_options opts = { NULL, 0, true };
	struct vmd_config conf;

	CHECK(config_parse_buffer(&conf, "b", text, strlen(text), &opts, ERR) == -1);
	CHECK(strcmp(err, "b:1: include is disabled here") == 0);
}

static void
nul_bytes_and_unterminated_input_fail_cleanly(void)
{
	static const char text[] = "vm \"a\" {\0}\n";
	struct vmd_config conf;

	CHECK(config_parse_buffer(&conf, "b", text, sizeof(text) - 1, NULL, ERR) == -1);
	CHECK(strcmp(err, "b:1: unexpected character 0x00") == 0);
	CHECK(config_parse_buffer(&conf, "b", "vm \"a", 5, NULL, ERR) == -1);
	CHECK(strcmp(err, "b:1: unterminated string") == 0);
	CHECK(config_parse_buffer(&conf, "b", "vm \"a\" {", 8, NULL, ERR) == -1);
	CHECK(strcmp(err, "b:1: unexpected end of file") == 0);
}

static void
received_params_are_terminated_and_checked(void)
{
	struct vm_params *vm = malloc(sizeof(*vm));

	vm_params_init(vm, "a");
	memset(vm->kernel, 'k', sizeof(vm->kernel));
	memset(vm->nics[3].switch_name, 's', sizeof(vm->nics[3].switch_name));
	CHECK(vm_params_check_received(vm, ERR) == 0);
	CHECK(strlen(vm->kernel) == sizeof(vm->kernel) - 1);
	CHECK(strlen(vm->nics[3].switch_name) == VM_NAME_MAX);
	vm->ndisks = VM_MAX_DISKS + 1;
	CHECK(vm_params_check_received(vm, ERR) == -1);
	vm->ndisks = 0;
	vm->memory = VM_MEMORY_MINIMUM + 1;
	CHECK(vm_params_check_received(vm, ERR) == -1);
	vm->memory = VM_MEMORY_DEFAULT;
	memset(vm->name, 'n', sizeof(vm->name));
	CHECK(vm_params_check_received(vm, ERR) == 0 && strlen(vm->name) == VM_NAME_MAX);
	vm->name[0] = '\0';
	CHECK(vm_params_check_received(vm, ERR) == -1);
	free(vm);
}

int
main(void)
{
	RUN_TEST(sizes_parse_exactly);
	RUN_TEST(memory_is_checked_and_rounded_to_megabytes);
	RUN_TEST(lladdrs_must_be_six_unicast_octets);
	RUN_TEST(owners_take_names_and_numbers);
	RUN_TEST(instances_change_only_what_is_allowed);
	RUN_TEST(instances_compare_the_interface_count);
	RUN_TEST(start_requests_name_no_taps_or_groups);
	RUN_TEST(received_interfaces_have_plain_names);
	RUN_TEST(user_limits_add_up);
	RUN_TEST(limits_hold);
	RUN_TEST(parse_buffer_reports_file_and_line);
	RUN_TEST(defines_override_the_file);
	RUN_TEST(includes_can_be_refused);
	RUN_TEST(nul_bytes_and_unterminated_input_fail_cleanly);
	RUN_TEST(received_params_are_terminated_and_checked);
	TEST_EXIT();
}
