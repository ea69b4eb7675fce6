/*
 * The parent's side of switches and VM interfaces: it tells priv which
 * bridges the configuration declares, what each tap needs (its bridge or
 * the addresses of a local interface, its device group), and on `vmctl
 * reset switches` rereads the switches and has priv make them again and
 * reattach the running VMs.  A reload removes the switches the new
 * configuration no longer has.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "net/dhcp.h"
#include "net/local6.h"
#include "net/netif.h"
#include "vmd/vmd.h"

void
vmd_switch_bridge(const struct vm_switch *sw, char out[VM_IFNAME_MAX])
{
	if (sw->ifname[0] != '\0')
		snprintf(out, VM_IFNAME_MAX, "%s", sw->ifname);
	else
		netif_default_bridge(sw->name, out);
}

int
vmd_tap_name(const struct vmd_vm *vm, uint32_t index, char out[VM_IFNAME_MAX])
{
	const struct vm_nic *nic = &vm->params.nics[index];

	if (nic->ifname[0] != '\0')
		return snprintf(out, VM_IFNAME_MAX, "%s", nic->ifname) < VM_IFNAME_MAX ? 0 : -1;
	return snprintf(out, VM_IFNAME_MAX, "vm%u-if%u", vm->id, index) < VM_IFNAME_MAX ? 0 : -1;
}

/* The switch an interface is on: NULL with err when it does not exist or is disabled. */
const struct vm_switch *
vmd_nic_switch(const struct vmd_env *env, const struct vm_nic *nic, uint32_t index, char *err,
	       size_t errlen)
{
	const struct vm_switch *sw = config_find_switch(&env->conf, nic->switch_name);

	if (sw == NULL)
		snprintf(err, errlen, "interface %u: switch \"%s\" does not exist", index,
			 nic->switch_name);
	else if (!sw->enabled)
		snprintf(err, errlen, "interface %u: switch \"%s\" is disabled", index,
			 nic->switch_name);
	return sw != NULL && sw->enabled ? sw : NULL;
}

static const char *const group_files[] = { NETIF_GROUP_FILES, NULL };

/* A vm.conf group as a Linux device group number. */
static int
vmd_group_number(const char *group, uint32_t *out)
{
	return netif_group_number(group, group_files, out);
}

/*
 * The interface's group, or its switch's: Linux has one device group per
 * interface where OpenBSD has a list of names.  One that is neither a number
 * nor a named group is reported and left out.
 */
static void
group_tap_request(const struct vmd_vm *vm, uint32_t index, const struct vm_switch *sw,
		  struct msg_priv_tap *tap)
{
	const char *group = vm->params.nics[index].group;

	if (group[0] == '\0' && sw != NULL)
		group = sw->group;
	if (group[0] == '\0')
		return;
	if (vmd_group_number(group, &tap->group) < 0) {
		log_warnx("vm %s: interface %u: group %s ignored: not a number, nor a name in %s",
			  vm->params.name, index, group, group_files[0]);
		return;
	}
	tap->flags |= PRIV_TAP_GROUP;
}

/* `local inet6`: the host's end of the interface's /64. */
static int
local6_tap_request(const struct vmd_globals *g, const struct vmd_vm *vm, uint32_t index,
		   struct msg_priv_tap *tap, char *err, size_t errlen)
{
	struct in6_addr host, guest;

	if (local6_addresses(&g->prefix6, g->prefix6_len, vm->id, index, &host, &guest, err,
			     errlen) < 0)
		return -1;
	memcpy(tap->addr6, &host, sizeof(tap->addr6));
	tap->prefix6_len = LOCAL6_SUBNET_LEN;
	tap->flags |= PRIV_TAP_LOCAL6;
	return 0;
}

int
vmd_tap_request(const struct vmd_env *env, const struct vmd_vm *vm, uint32_t index,
		struct msg_priv_tap *tap, struct msg_vm_nic *vnic, char *err, size_t errlen)
{
	const struct vm_nic *nic = &vm->params.nics[index];
	const struct vmd_globals *g = &env->conf.globals;
	const struct vm_switch *sw = NULL;
	struct in_addr prefix = g->prefix4, host, guest;
	uint32_t prefix_len = g->prefix4_len;

	memset(tap, 0, sizeof(*tap));
	memset(vnic, 0, sizeof(*vnic));
	tap->vm_id = vnic->vm_id = vm->id;
	tap->index = vnic->index = index;
	if (vmd_tap_name(vm, index, tap->ifname) < 0) {
		snprintf(err, errlen, "VM id %u: interface name too long", vm->id);
		return -1;
	}
	if (nic->switch_name[0] != '\0') {
		if ((nic->flags & VM_NIC_LOCAL) != 0) {
			snprintf(err, errlen, "interface %u: a local interface is on no switch", index);
			return -1;
		}
		if ((sw = vmd_nic_switch(env, nic, index, err, errlen)) == NULL)
			return -1;
		vmd_switch_bridge(sw, tap->bridge);
	}
	if (nic->flags & VM_NIC_DOWN)
		tap->flags |= PRIV_TAP_DOWN;
	group_tap_request(vm, index, sw, tap);
	if ((nic->flags & VM_NIC_LOCKED) || (sw != NULL && sw->locked_lladdr))
		vnic->flags |= VM_NIC_MSG_LOCKED;
	if (nic->flags & VM_NIC_LOCAL) {
		if (!(g->set & VMD_SET_PREFIX4)) {
			inet_pton(AF_INET, VMD_PREFIX4_DEFAULT, &prefix);
			prefix_len = VMD_PREFIX4_LEN_DEFAULT;
		}
		if (dhcp_local_addresses(prefix, prefix_len, vm->id, index, &host, &guest, err,
					 errlen) < 0)
			return -1;
		tap->flags |= PRIV_TAP_LOCAL;
		tap->addr = vnic->host_addr = host.s_addr;
		tap->prefix_len = vnic->prefix_len = 31;
		vnic->guest_addr = guest.s_addr;
		vnic->flags |= VM_NIC_MSG_LOCAL;
		if (g->inet6 && local6_tap_request(g, vm, index, tap, err, errlen) < 0)
			return -1;
	}
	return 0;
}

void
vmd_send_switches(struct vmd_env *env)
{
	for (size_t i = 0; i < env->conf.nswitches; i++) {
		const struct vm_switch *sw = &env->conf.switches[i];
		struct msg_priv_switch m = { 0 };
		uint32_t group;

		if (!sw->enabled)
			continue;
		snprintf(m.name, sizeof(m.name), "%s", sw->name);
		vmd_switch_bridge(sw, m.bridge);
		if (sw->down)
			m.flags |= PRIV_SWITCH_DOWN;
		if (sw->group[0] != '\0' && vmd_group_number(sw->group, &group) < 0)
			log_warnx("switch %s: group %s ignored: not a number, nor a name in %s",
				  sw->name, sw->group, group_files[0]);
		vmd_send_child(env, &env->priv, MSG_PRIV_SWITCH, 0, &m, sizeof(m), NULL, 0);
	}
}

static bool
vm_has_taps(const struct vmd_vm *vm)
{
	return vm->state != VM_STATE_STOPPED && vm->state != VM_STATE_WAITING;
}

/*
 * Puts the taps of the VMs that run back on their switches' bridges; quiet:
 * an interface whose switch is gone was reported when it went.
 */
static void
reattach_taps(struct vmd_env *env, bool quiet)
{
	struct msg_vm_nic vnic;
	struct msg_priv_tap tap;
	struct vmd_vm *vm;
	char err[256];

	TAILQ_FOREACH(vm, &env->vms, entry) {
		if (!vm_has_taps(vm))
			continue;
		for (uint32_t i = 0; i < vm->params.nnics; i++) {
			if (vm->params.nics[i].switch_name[0] == '\0')
				continue;
			if (vmd_tap_request(env, vm, i, &tap, &vnic, err, sizeof(err)) < 0) {
				if (!quiet)
					log_warnx("vm %s: %s: left on no switch", vm->params.name, err);
				continue;
			}
			vmd_send_child(env, &env->priv, MSG_PRIV_ATTACH, vm->id, &tap, sizeof(tap),
				       NULL, 0);
		}
	}
}

/* Whether the configuration still has the switch, enabled and on the same bridge. */
static bool
switch_kept(const struct vmd_env *env, const struct vm_switch *old)
{
	const struct vm_switch *sw = config_find_switch(&env->conf, old->name);
	char bridge[VM_IFNAME_MAX], old_bridge[VM_IFNAME_MAX];

	if (sw == NULL || !sw->enabled)
		return false;
	vmd_switch_bridge(sw, bridge);
	vmd_switch_bridge(old, old_bridge);
	return strcmp(bridge, old_bridge) == 0;
}

/* Takes the running VMs' taps off a switch that is going away. */
static void
detach_taps(struct vmd_env *env, const struct vm_switch *old, const char *bridge)
{
	struct msg_priv_tap tap;
	struct vmd_vm *vm;

	TAILQ_FOREACH(vm, &env->vms, entry) {
		if (!vm_has_taps(vm))
			continue;
		for (uint32_t i = 0; i < vm->params.nnics; i++) {
			if (strcmp(vm->params.nics[i].switch_name, old->name) != 0)
				continue;
			memset(&tap, 0, sizeof(tap));
			tap.vm_id = vm->id;
			tap.index = i;
			if (vmd_tap_name(vm, i, tap.ifname) < 0)
				continue;
			snprintf(tap.bridge, sizeof(tap.bridge), "%s", bridge);
			log_warnx("vm %s: interface %u: switch %s is no longer configured: "
				  "%s left on no switch", vm->params.name, i, old->name, tap.ifname);
			vmd_send_child(env, &env->priv, MSG_PRIV_DETACH, vm->id, &tap, sizeof(tap),
				       NULL, 0);
		}
	}
}

void
vmd_reload_switches(struct vmd_env *env, const struct vm_switch *old, size_t nold)
{
	for (size_t i = 0; i < nold; i++) {
		struct msg_priv_switch m = { 0 };

		if (!old[i].enabled || switch_kept(env, &old[i]))
			continue;
		snprintf(m.name, sizeof(m.name), "%s", old[i].name);
		vmd_switch_bridge(&old[i], m.bridge);
		detach_taps(env, &old[i], m.bridge);
		vmd_send_child(env, &env->priv, MSG_PRIV_REMOVE, 0, &m, sizeof(m), NULL, 0);
	}
	vmd_send_switches(env);
	reattach_taps(env, true);
}

int
vmd_reset_switches(struct vmd_env *env, char *err, size_t errlen)
{
	struct config_options copts = { env->opts.defines, env->opts.ndefines, false };
	struct vmd_config conf;
	struct vm_switch *old = env->conf.switches;
	struct msg_priv_switch none = { 0 };

	if (config_parse_file(&conf, env->opts.conf_path, &copts, err, errlen) < 0)
		return -1;
	env->conf.switches = conf.switches;
	env->conf.nswitches = conf.nswitches;
	conf.switches = old;
	config_free(&conf);
	vmd_send_child(env, &env->priv, MSG_PRIV_RESET, 0, &none, sizeof(none), NULL, 0);
	vmd_send_switches(env);
	reattach_taps(env, false);
	return 0;
}
