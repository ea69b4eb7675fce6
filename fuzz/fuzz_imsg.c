/*
 * libFuzzer target for vmd's messages: a received record goes through the
 * framing check (msg_parse) and then the reader for its type, as control,
 * the parent, vmm and a VM process would read it.  Any input must be
 * refused or read into a struct whose strings are terminated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/msg.h"
#include "common/proto.h"

static void
read_as_type(const struct msg *m)
{
	static struct ctl_start start;
	static struct msg_vm_start vm_start;
	static struct vm_params params;
	struct ctl_target target;
	struct ctl_path path;
	struct ctl_result result;
	struct ctl_vm_info info;
	struct msg_vm_fd fd;
	struct msg_vm_event event;
	struct msg_priv_tap tap;
	struct msg_priv_switch sw;
	struct msg_vm_nic nic;
	char err[512];

	if (msg_read_ctl_start(m, &start, err, sizeof(err)) == 0 &&
	    strlen(start.params.name) > VM_NAME_MAX)
		abort();
	if (msg_read_ctl_target(m, &target) == 0 && strlen(target.name) > VM_NAME_MAX)
		abort();
	if (msg_read_ctl_path(m, &path) == 0 && strlen(path.path) >= sizeof(path.path))
		abort();
	if (msg_read_ctl_result(m, &result) == 0 && strlen(result.message) >= sizeof(result.message))
		abort();
	if (msg_read_ctl_vm_info(m, &info) == 0 && strlen(info.name) > VM_NAME_MAX)
		abort();
	if (msg_read_vm_start(m, &vm_start, err, sizeof(err)) == 0 &&
	    vm_start.params.ndisks > VM_MAX_DISKS)
		abort();
	if (msg_read_vm_params(m, &params, err, sizeof(err)) == 0 && params.nnics > VM_MAX_NICS)
		abort();
	if (msg_read_vm_fd(m, &fd) == 0 && (fd.kind < VM_FD_KVM || fd.kind > VM_FD_KIND_LAST))
		abort();
	(void)msg_read_vm_event(m, &event);
	if (msg_read_priv_tap(m, &tap) == 0 &&
	    (strlen(tap.ifname) >= sizeof(tap.ifname) || strlen(tap.bridge) >= sizeof(tap.bridge) ||
	     strlen(tap.reason) >= sizeof(tap.reason)))
		abort();
	if (msg_read_priv_switch(m, &sw) == 0 &&
	    (strlen(sw.name) > VM_NAME_MAX || strlen(sw.bridge) >= sizeof(sw.bridge)))
		abort();
	if (msg_read_vm_nic(m, &nic) == 0 && nic.prefix_len > 32)
		abort();
	(void)msg_is_ctl_request(m->hdr.type);
	(void)msg_type_name(m->hdr.type);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct msg_buf buf;
	struct msg m;

	/* The record as recvmsg would leave it; messages larger than that are cut. */
	if (size > sizeof(buf.bytes))
		return 0;
	memcpy(buf.bytes, data, size);
	memset(&m, 0, sizeof(m));
	if (msg_parse(buf.bytes, size, &m) < 0)
		return 0;
	read_as_type(&m);
	/* The header's type, tried against every reader with the right length. */
	for (uint32_t type = MSG_CTL_START; type < MSG_TYPE_LAST; type++) {
		m.hdr.type = type;
		read_as_type(&m);
	}
	return 0;
}
