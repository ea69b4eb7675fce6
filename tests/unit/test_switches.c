/*
 * What the parent asks priv for each VM interface (src/vmd/switches.c):
 * the bridge of its switch, refusals for missing or disabled switches, the
 * /31 of a local interface from the configured or default prefix, the locks;
 * and the new messages' readers.
 */
#include <arpa/inet.h>
#include <string.h>

#include "common/proto.h"
#include "unit/check.h"
#include "vmd/vmd.h"

static struct vmd_env env;
static struct vmd_vm vm;

static void
setup(const char *conf)
{
	struct config_options opts = { NULL, 0, true };
	char err[512];

	config_free(&env.conf);
	CHECK(config_parse_buffer(&env.conf, "test.conf", conf, strlen(conf), &opts, err,
				  sizeof(err)) == 0);
	memset(&vm, 0, sizeof(vm));
	vm.id = 5;
	if (env.conf.nvms > 0)
		vm.params = env.conf.vms[0];
}

static const char *
addr(uint32_t a)
{
	static char text[INET_ADDRSTRLEN];
	struct in_addr in = { a };

	return inet_ntop(AF_INET, &in, text, sizeof(text));
}

static void
test_switch_bridge(void)
{
	struct msg_priv_tap tap;
	struct msg_vm_nic nic;
	char err[256];

	setup("switch \"lan\" { }\nswitch \"up\" { interface br0\nlocked lladdr }\n"
	      "vm \"v\" { interface { switch \"lan\" }\ninterface tap7 { switch \"up\", down } }\n");
	CHECK(vmd_tap_request(&env, &vm, 0, &tap, &nic, err, sizeof(err)) == 0);
	CHECK(strcmp(tap.ifname, "vm5-if0") == 0 && strcmp(tap.bridge, "vmdsw-lan") == 0);
	CHECK(tap.flags == 0 && nic.flags == 0 && nic.index == 0 && nic.vm_id == 5);
	CHECK(vmd_tap_request(&env, &vm, 1, &tap, &nic, err, sizeof(err)) == 0);
	CHECK(strcmp(tap.ifname, "tap7") == 0 && strcmp(tap.bridge, "br0") == 0);
	CHECK(tap.flags == PRIV_TAP_DOWN && nic.flags == VM_NIC_MSG_LOCKED);
}

static void
test_missing_and_disabled_switch(void)
{
	struct msg_priv_tap tap;
	struct msg_vm_nic nic;
	char err[256];

	setup("switch \"off\" { disable }\nvm \"v\" { interface { switch \"off\" } }\n");
	CHECK(vmd_tap_request(&env, &vm, 0, &tap, &nic, err, sizeof(err)) < 0);
	CHECK(strcmp(err, "interface 0: switch \"off\" is disabled") == 0);
	/* vmctl start -n names a switch that vm.conf does not declare. */
	strcpy(vm.params.nics[0].switch_name, "nosuch");
	CHECK(vmd_tap_request(&env, &vm, 0, &tap, &nic, err, sizeof(err)) < 0);
	CHECK(strcmp(err, "interface 0: switch \"nosuch\" does not exist") == 0);
	/* A local interface is on no switch. */
	setup("switch \"lan\" { }\nvm \"v\" { local interface }\n");
	strcpy(vm.params.nics[0].switch_name, "lan");
	CHECK(vmd_tap_request(&env, &vm, 0, &tap, &nic, err, sizeof(err)) < 0);
	CHECK(strstr(err, "a local interface is on no switch") != NULL);
}

static void
test_local_interface(void)
{
	struct msg_priv_tap tap;
	struct msg_vm_nic nic;
	char err[256];

	setup("vm \"v\" { interface\nlocal interface }\n");
	CHECK(vmd_tap_request(&env, &vm, 1, &tap, &nic, err, sizeof(err)) == 0);
	CHECK(tap.flags == PRIV_TAP_LOCAL && tap.prefix_len == 31 && tap.bridge[0] == '\0');
	CHECK(strcmp(addr(tap.addr), "100.64.5.2") == 0);
	CHECK(nic.flags == VM_NIC_MSG_LOCAL && nic.host_addr == tap.addr && nic.prefix_len == 31);
	CHECK(strcmp(addr(nic.guest_addr), "100.64.5.3") == 0);
	setup("local prefix 10.9.0.0/16\nvm \"v\" { local interface }\n");
	CHECK(vmd_tap_request(&env, &vm, 0, &tap, &nic, err, sizeof(err)) == 0);
	CHECK(strcmp(addr(tap.addr), "10.9.5.0") == 0 && strcmp(addr(nic.guest_addr), "10.9.5.1") == 0);
	setup("local prefix 10.9.8.0/24\nvm \"v\" { local interface }\n");
	CHECK(vmd_tap_request(&env, &vm, 0, &tap, &nic, err, sizeof(err)) < 0);
	CHECK(strstr(err, "10.9.8.0/24") != NULL);
}

static void
test_new_message_readers(void)
{
	struct msg_priv_switch sw, got;
	struct msg_vm_nic nic = { 1, 0, VM_NIC_MSG_LOCAL, 1, 2, 31 }, gotnic;
	struct msg m = { 0 };

	memset(&sw, 'x', sizeof(sw)); /* no terminators: the reader adds them */
	m.hdr.type = MSG_PRIV_SWITCH;
	m.hdr.len = sizeof(sw);
	m.data = (const uint8_t *)&sw;
	CHECK(msg_read_priv_switch(&m, &got) == 0);
	CHECK(strlen(got.name) == sizeof(got.name) - 1 && strlen(got.bridge) == sizeof(got.bridge) - 1);
	m.hdr.len = sizeof(sw) - 1;
	CHECK(msg_read_priv_switch(&m, &got) < 0);
	m.hdr.type = MSG_VM_NIC;
	m.hdr.len = sizeof(nic);
	m.data = (const uint8_t *)&nic;
	CHECK(msg_read_vm_nic(&m, &gotnic) == 0 && gotnic.prefix_len == 31);
	nic.prefix_len = 33;
	CHECK(msg_read_vm_nic(&m, &gotnic) < 0);
	m.hdr.type = MSG_PRIV_SWITCH;
	CHECK(msg_read_vm_nic(&m, &gotnic) < 0);
}

int
main(void)
{
	RUN_TEST(test_switch_bridge);
	RUN_TEST(test_missing_and_disabled_switch);
	RUN_TEST(test_local_interface);
	RUN_TEST(test_new_message_readers);
	config_free(&env.conf);
	TEST_EXIT();
}
