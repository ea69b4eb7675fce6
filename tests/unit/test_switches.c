/*
 * What the parent asks priv for each VM interface (src/vmd/switches.c):
 * the bridge of its switch, refusals for missing or disabled switches, the
 * /31 of a local interface from the configured or default prefix, the locks;
 * device groups; what a reload that drops switches asks priv (over a real socketpair); and
 * the new messages' readers.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/proto.h"
#include "net/local6.h"
#include "net/netif.h"
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

static const char *
addr6(const uint8_t bytes[16])
{
	static char text[INET6_ADDRSTRLEN];

	return inet_ntop(AF_INET6, bytes, text, sizeof(text));
}

static void
test_local_inet6(void)
{
	struct msg_priv_tap tap;
	struct msg_vm_nic nic;
	struct in6_addr prefix, host, guest;
	char err[256];

	/* Without local inet6, no IPv6. */
	setup("vm \"v\" { local interface }\n");
	CHECK(vmd_tap_request(&env, &vm, 0, &tap, &nic, err, sizeof(err)) == 0);
	CHECK(tap.flags == PRIV_TAP_LOCAL);
	/* VM 5, interface 1: subnet 5 * 128 + 1 = 0x281 of the prefix, host ::1. */
	setup("local inet6 prefix fd12:3456::/48\nvm \"v\" { interface\nlocal interface }\n");
	CHECK(vmd_tap_request(&env, &vm, 1, &tap, &nic, err, sizeof(err)) == 0);
	CHECK(tap.flags == (PRIV_TAP_LOCAL | PRIV_TAP_LOCAL6) && tap.prefix6_len == 64);
	CHECK(strcmp(addr6(tap.addr6), "fd12:3456:0:281::1") == 0);
	/* A switch interface gets none. */
	CHECK(vmd_tap_request(&env, &vm, 0, &tap, &nic, err, sizeof(err)) == 0);
	CHECK(tap.flags == 0);
	/* The default prefix, fd00::/8. */
	setup("local inet6\nvm \"v\" { local interface }\n");
	CHECK(vmd_tap_request(&env, &vm, 0, &tap, &nic, err, sizeof(err)) == 0);
	CHECK(strcmp(addr6(tap.addr6), "fd00:0:0:280::1") == 0);
	/* The guest's end, and a prefix too long for VM 5. */
	inet_pton(AF_INET6, "2001:db8:1:ff00::", &prefix);
	CHECK(local6_addresses(&prefix, 56, 1, 2, &host, &guest, err, sizeof(err)) == 0);
	CHECK(strcmp(addr6(host.s6_addr), "2001:db8:1:ff82::1") == 0);
	CHECK(strcmp(addr6(guest.s6_addr), "2001:db8:1:ff82::2") == 0);
	setup("local inet6 prefix fd12:3456:789a:bc00::/58\nvm \"v\" { local interface }\n");
	CHECK(vmd_tap_request(&env, &vm, 0, &tap, &nic, err, sizeof(err)) < 0);
	CHECK(strstr(err, "local inet6 prefix fd12:3456:789a:bc00::/58: no room") != NULL);
	CHECK(local6_addresses(&prefix, 65, 0, 0, &host, &guest, err, sizeof(err)) < 0);
	inet_pton(AF_INET6, "::", &prefix);
	CHECK(local6_addresses(&prefix, 0, 0xffffffffu, 127, &host, &guest, err, sizeof(err)) == 0);
	CHECK(strcmp(addr6(host.s6_addr), "0:7f:ffff:ffff::1") == 0);
}

static void
test_groups(void)
{
	struct msg_priv_tap tap;
	struct msg_vm_nic nic;
	char err[256], path[] = "/tmp/vmd-test-group.XXXXXX";
	const char *files[] = { "/nonexistent/group", path, NULL };
	const char *none[] = { NULL };
	uint32_t group;
	FILE *f;
	int fd;

	/* The switch's group, a number; the interface's own wins over it. */
	setup("switch \"lan\" { group 42 }\n"
	      "vm \"v\" { interface { switch \"lan\" }\ninterface { switch \"lan\", group 0x7 }\n"
	      "interface { switch \"lan\", group vmdnosuchgroup }\ninterface }\n");
	CHECK(vmd_tap_request(&env, &vm, 0, &tap, &nic, err, sizeof(err)) == 0);
	CHECK(tap.flags == PRIV_TAP_GROUP && tap.group == 42);
	CHECK(vmd_tap_request(&env, &vm, 1, &tap, &nic, err, sizeof(err)) == 0);
	CHECK(tap.flags == PRIV_TAP_GROUP && tap.group == 7);
	/* A name no group file knows: left out, the interface still works. */
	CHECK(vmd_tap_request(&env, &vm, 2, &tap, &nic, err, sizeof(err)) == 0);
	CHECK(tap.flags == 0);
	CHECK(vmd_tap_request(&env, &vm, 3, &tap, &nic, err, sizeof(err)) == 0);
	CHECK(tap.flags == 0);

	/* Names from the first group file that exists, as iproute2 reads them. */
	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	f = fdopen(fd, "w");
	fputs("# device group names\n0\tdefault\n0x10 uplink # the outside\n"
	      "junk\n99999999999 huge\n  7   vms\n", f);
	fclose(f);
	CHECK(netif_group_number("uplink", files, &group) == 0 && group == 16);
	CHECK(netif_group_number("vms", files, &group) == 0 && group == 7);
	CHECK(netif_group_number("default", files, &group) == 0 && group == 0);
	CHECK(netif_group_number("huge", files, &group) < 0);
	CHECK(netif_group_number("outside", files, &group) < 0);
	CHECK(netif_group_number("4294967295", none, &group) == 0 && group == 4294967295u);
	CHECK(netif_group_number("4294967296", none, &group) < 0);
	CHECK(netif_group_number("uplink", none, &group) < 0);
	unlink(path);
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

/* The next message priv would read: its type, and the payload in *out. */
static uint32_t
next_message(int fd, void *out, size_t len)
{
	static struct msg_buf buf;
	struct msg m;

	if (msg_recv(fd, &m, &buf) <= 0)
		return MSG_NONE;
	CHECK(m.hdr.len == len);
	if (m.hdr.len == len)
		memcpy(out, m.data, len);
	return m.hdr.type;
}

static void
test_reload_removes_switches(void)
{
	struct msg_priv_switch sw;
	struct msg_priv_tap tap;
	struct vm_switch *old;
	struct vmd_vm *running;
	size_t nold;
	int sv[2];

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	TAILQ_INIT(&env.vms);
	env.priv.fd = sv[0];
	env.priv.name = "priv";
	setup("switch \"lan\" { }\nswitch \"pre\" { interface br0 }\nswitch \"same\" { }\n"
	      "vm \"v\" { interface { switch \"lan\" } }\n");
	running = vm_add(&env, &env.conf.vms[0], true);
	CHECK(running != NULL);
	if (running == NULL)
		return;
	running->state = VM_STATE_RUNNING;
	nold = env.conf.nswitches;
	old = env.conf.switches;
	env.conf.switches = NULL;
	/* lan is gone, pre moved to another bridge, same stays. */
	setup("switch \"pre\" { interface br1 }\nswitch \"same\" { }\n");
	vmd_reload_switches(&env, old, nold);
	/* The running VM's tap leaves lan's bridge first, then lan goes. */
	CHECK(next_message(sv[1], &tap, sizeof(tap)) == MSG_PRIV_DETACH);
	CHECK(strcmp(tap.ifname, "vm1-if0") == 0 && strcmp(tap.bridge, "vmdsw-lan") == 0);
	CHECK(next_message(sv[1], &sw, sizeof(sw)) == MSG_PRIV_REMOVE);
	CHECK(strcmp(sw.name, "lan") == 0 && strcmp(sw.bridge, "vmdsw-lan") == 0);
	CHECK(next_message(sv[1], &sw, sizeof(sw)) == MSG_PRIV_REMOVE);
	CHECK(strcmp(sw.name, "pre") == 0 && strcmp(sw.bridge, "br0") == 0);
	/* Then the switches of the new file are declared; same is not removed. */
	CHECK(next_message(sv[1], &sw, sizeof(sw)) == MSG_PRIV_SWITCH);
	CHECK(strcmp(sw.name, "pre") == 0 && strcmp(sw.bridge, "br1") == 0);
	CHECK(next_message(sv[1], &sw, sizeof(sw)) == MSG_PRIV_SWITCH);
	CHECK(strcmp(sw.name, "same") == 0);
	/* Nothing is reattached: the VM's switch is gone. */
	CHECK(msg_recv(sv[1], &(struct msg){ 0 }, &(struct msg_buf){ 0 }) < 0);
	free(old);
	vm_remove(&env, running);
	close(sv[0]);
	close(sv[1]);
}

static void
test_priv_remove_readers(void)
{
	struct msg_priv_switch sw = { "lan", "vmdsw-lan", 0 }, got;
	struct msg_priv_tap tap = { 0 }, gottap;
	struct msg m = { 0 };

	m.hdr.type = MSG_PRIV_REMOVE;
	m.hdr.len = sizeof(sw);
	m.data = (const uint8_t *)&sw;
	CHECK(msg_read_priv_switch(&m, &got) == 0 && strcmp(got.bridge, "vmdsw-lan") == 0);
	CHECK(msg_read_priv_tap(&m, &gottap) < 0);
	m.hdr.type = MSG_PRIV_DETACH;
	m.hdr.len = sizeof(tap);
	m.data = (const uint8_t *)&tap;
	CHECK(msg_read_priv_tap(&m, &gottap) == 0);
	CHECK(msg_read_priv_switch(&m, &got) < 0);
	CHECK(strcmp(msg_type_name(MSG_PRIV_REMOVE), "priv-remove") == 0);
}

int
main(void)
{
	RUN_TEST(test_switch_bridge);
	RUN_TEST(test_missing_and_disabled_switch);
	RUN_TEST(test_local_interface);
	RUN_TEST(test_local_inet6);
	RUN_TEST(test_groups);
	RUN_TEST(test_new_message_readers);
	RUN_TEST(test_reload_removes_switches);
	RUN_TEST(test_priv_remove_readers);
	config_free(&env.conf);
	TEST_EXIT();
}
