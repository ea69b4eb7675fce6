#include "common/proto.h"

#include <stdio.h>
#include <string.h>

#define TERMINATE(array) ((array)[sizeof(array) - 1] = '\0')

/* The one length check every reader makes. */
static int
msg_copy(const struct msg *m, void *out, size_t size)
{
	if (m->hdr.len != size || m->data == NULL)
		return -1;
	memcpy(out, m->data, size);
	return 0;
}

int
msg_read_ctl_start(const struct msg *m, struct ctl_start *out, char *err, size_t errlen)
{
	if (m->hdr.type != MSG_CTL_START || msg_copy(m, out, sizeof(*out)) < 0) {
		snprintf(err, errlen, "malformed start request");
		return -1;
	}
	return vm_params_check_received(&out->params, err, errlen);
}

int
msg_read_ctl_target(const struct msg *m, struct ctl_target *out)
{
	switch (m->hdr.type) {
	case MSG_CTL_STOP:
	case MSG_CTL_PAUSE:
	case MSG_CTL_UNPAUSE:
	case MSG_CTL_WAIT:
	case MSG_CTL_STATUS:
	case MSG_CTL_CONSOLE:
	case MSG_CTL_RELOAD:
	case MSG_CTL_RESET:
	case MSG_CTL_LOG:
		break;
	default:
		return -1;
	}
	if (msg_copy(m, out, sizeof(*out)) < 0)
		return -1;
	TERMINATE(out->name);
	return 0;
}

int
msg_read_ctl_path(const struct msg *m, struct ctl_path *out)
{
	if (m->hdr.type != MSG_CTL_LOAD || msg_copy(m, out, sizeof(*out)) < 0)
		return -1;
	TERMINATE(out->path);
	return 0;
}

int
msg_read_ctl_result(const struct msg *m, struct ctl_result *out)
{
	if (m->hdr.type != MSG_CTL_RESULT || msg_copy(m, out, sizeof(*out)) < 0)
		return -1;
	TERMINATE(out->message);
	return 0;
}

int
msg_read_ctl_vm_info(const struct msg *m, struct ctl_vm_info *out)
{
	if (m->hdr.type != MSG_CTL_INFO || msg_copy(m, out, sizeof(*out)) < 0)
		return -1;
	TERMINATE(out->tty);
	TERMINATE(out->owner);
	TERMINATE(out->state);
	TERMINATE(out->name);
	return 0;
}

int
msg_read_vm_start(const struct msg *m, struct msg_vm_start *out, char *err, size_t errlen)
{
	if (m->hdr.type != MSG_VMM_START || msg_copy(m, out, sizeof(*out)) < 0) {
		snprintf(err, errlen, "malformed VM start message");
		return -1;
	}
	return vm_params_check_received(&out->params, err, errlen);
}

int
msg_read_vm_params(const struct msg *m, struct vm_params *out, char *err, size_t errlen)
{
	if (m->hdr.type != MSG_VM_PARAMS || msg_copy(m, out, sizeof(*out)) < 0) {
		snprintf(err, errlen, "malformed VM parameters");
		return -1;
	}
	return vm_params_check_received(out, err, errlen);
}

int
msg_read_vm_fd(const struct msg *m, struct msg_vm_fd *out)
{
	if (m->hdr.type != MSG_VM_FD || msg_copy(m, out, sizeof(*out)) < 0)
		return -1;
	TERMINATE(out->name);
	if (out->kind < VM_FD_KVM || out->kind > VM_FD_KIND_LAST)
		return -1;
	return 0;
}

int
msg_read_vm_event(const struct msg *m, struct msg_vm_event *out)
{
	switch (m->hdr.type) {
	case MSG_VMM_GO:
	case MSG_VMM_STOP:
	case MSG_VMM_PAUSE:
	case MSG_VMM_UNPAUSE:
	case MSG_VMM_STARTED:
	case MSG_VMM_EXITED:
	case MSG_VMM_PAUSED:
	case MSG_VMM_UNPAUSED:
	case MSG_LOG_VERBOSE:
		break;
	default:
		return -1;
	}
	return msg_copy(m, out, sizeof(*out));
}

int
msg_read_priv_tap(const struct msg *m, struct msg_priv_tap *out)
{
	if ((m->hdr.type != MSG_PRIV_TAP && m->hdr.type != MSG_PRIV_ATTACH &&
	     m->hdr.type != MSG_PRIV_DETACH) ||
	    msg_copy(m, out, sizeof(*out)) < 0)
		return -1;
	TERMINATE(out->ifname);
	TERMINATE(out->bridge);
	TERMINATE(out->reason);
	return 0;
}

int
msg_read_priv_refused(const struct msg *m, struct msg_priv_refused *out)
{
	if (m->hdr.type != MSG_PRIV_REFUSED || msg_copy(m, out, sizeof(*out)) < 0)
		return -1;
	TERMINATE(out->ifname);
	TERMINATE(out->reason);
	return 0;
}

int
msg_read_priv_switch(const struct msg *m, struct msg_priv_switch *out)
{
	if ((m->hdr.type != MSG_PRIV_SWITCH && m->hdr.type != MSG_PRIV_RESET &&
	     m->hdr.type != MSG_PRIV_REMOVE) ||
	    msg_copy(m, out, sizeof(*out)) < 0)
		return -1;
	TERMINATE(out->name);
	TERMINATE(out->bridge);
	return 0;
}

int
msg_read_vm_nic(const struct msg *m, struct msg_vm_nic *out)
{
	if (m->hdr.type != MSG_VM_NIC || msg_copy(m, out, sizeof(*out)) < 0)
		return -1;
	if (out->prefix_len > 32)
		return -1;
	return 0;
}

int
msg_read_ctl_client(const struct msg *m, struct msg_ctl_client *out)
{
	if (m->hdr.type != MSG_CTL_CLIENT || msg_copy(m, out, sizeof(*out)) < 0)
		return -1;
	if (out->peer_id == 0 || out->peer_id != m->hdr.peer_id || out->connected > 1 ||
	    m->nfds != (int)out->connected)
		return -1;
	return 0;
}

int
msg_is_ctl_request(uint32_t type)
{
	return type >= MSG_CTL_START && type <= MSG_CTL_REQUEST_LAST;
}

const char *
msg_type_name(uint32_t type)
{
	static const struct {
		uint32_t type;
		const char *name;
	} names[] = {
		{ MSG_CTL_START, "start" },	    { MSG_CTL_STOP, "stop" },
		{ MSG_CTL_PAUSE, "pause" },	    { MSG_CTL_UNPAUSE, "unpause" },
		{ MSG_CTL_WAIT, "wait" },	    { MSG_CTL_STATUS, "status" },
		{ MSG_CTL_CONSOLE, "console" },	    { MSG_CTL_RELOAD, "reload" },
		{ MSG_CTL_LOAD, "load" },	    { MSG_CTL_RESET, "reset" },
		{ MSG_CTL_LOG, "log" },		    { MSG_CTL_INFO, "info" },
		{ MSG_CTL_RESULT, "result" },	    { MSG_VMM_START, "vmm-start" },
		{ MSG_VM_FD, "vm-fd" },		    { MSG_VMM_GO, "vmm-go" },
		{ MSG_VMM_STOP, "vmm-stop" },	    { MSG_VMM_PAUSE, "vmm-pause" },
		{ MSG_VMM_UNPAUSE, "vmm-unpause" }, { MSG_VMM_STARTED, "vmm-started" },
		{ MSG_VMM_EXITED, "vmm-exited" },   { MSG_VMM_PAUSED, "vmm-paused" },
		{ MSG_VMM_UNPAUSED, "vmm-unpaused" }, { MSG_VM_PARAMS, "vm-params" },
		{ MSG_PRIV_TAP, "priv-tap" },	    { MSG_LOG_VERBOSE, "log-verbose" },
		{ MSG_VM_NIC, "vm-nic" },	    { MSG_PRIV_SWITCH, "priv-switch" },
		{ MSG_PRIV_RESET, "priv-reset" },   { MSG_PRIV_ATTACH, "priv-attach" },
		{ MSG_PRIV_DETACH, "priv-detach" }, { MSG_PRIV_REMOVE, "priv-remove" },
		{ MSG_PRIV_REFUSED, "priv-refused" },
		{ MSG_CTL_CLIENT, "client" },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].type == type)
			return names[i].name;
	return "unknown";
}
