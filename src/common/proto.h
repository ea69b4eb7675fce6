/*
 * vmd's messages: the types, their fixed-size payloads, and one reader per
 * payload that checks the length and terminates every string.  See msg.h for
 * the framing.
 *
 *   vmctl -> control -> parent:  MSG_CTL_* requests; replies MSG_CTL_INFO*
 *                                then one MSG_CTL_RESULT that ends the request
 *   parent <-> vmm:              MSG_VMM_*, MSG_VM_FD
 *   vmm <-> VM process:          MSG_VM_*
 *   parent <-> priv:             MSG_PRIV_*
 */
#ifndef VMD_PROTO_H
#define VMD_PROTO_H

#include <limits.h>
#include <stdint.h>

#include "common/msg.h"
#include "common/vmconf.h"

#define VMD_SOCKET_PATH "/run/vmd.sock"
#define VMD_USER	"_vmd"
#define VMD_EMPTY_DIR	"/var/lib/vmd/empty" /* the root of control and the VMs */

enum msg_type {
	MSG_NONE = 0,
	/* vmctl requests (payload: struct ctl_*) */
	MSG_CTL_START = 1,  /* struct ctl_start */
	MSG_CTL_STOP,	    /* struct ctl_target; flags CTL_STOP_* */
	MSG_CTL_PAUSE,	    /* struct ctl_target */
	MSG_CTL_UNPAUSE,    /* struct ctl_target */
	MSG_CTL_WAIT,	    /* struct ctl_target */
	MSG_CTL_STATUS,	    /* struct ctl_target; id 0 and no name: all */
	MSG_CTL_CONSOLE,    /* struct ctl_target; the result carries the tty */
	MSG_CTL_RELOAD,	    /* struct ctl_target */
	MSG_CTL_LOAD,	    /* struct ctl_path */
	MSG_CTL_RESET,	    /* struct ctl_target; flags CTL_RESET_* */
	MSG_CTL_LOG,	    /* struct ctl_target; flags: the verbosity */
	MSG_CTL_REQUEST_LAST = MSG_CTL_LOG,
	/* replies to vmctl */
	MSG_CTL_INFO = 32,  /* struct ctl_vm_info */
	MSG_CTL_RESULT,	    /* struct ctl_result: ends a request */
	/* control -> parent */
	MSG_CTL_CLIENT = 48, /* struct msg_ctl_client; connected: the client's socket */
	/* parent <-> vmm <-> VM process */
	MSG_VMM_START = 64, /* struct msg_vm_start: vmm forks the VM process */
	MSG_VM_FD,	    /* struct msg_vm_fd and one descriptor */
	MSG_VMM_GO,	    /* struct msg_vm_event: all descriptors sent, build it */
	MSG_VMM_STOP,	    /* struct msg_vm_event; status 1: kill it */
	MSG_VMM_PAUSE,	    /* struct msg_vm_event */
	MSG_VMM_UNPAUSE,    /* struct msg_vm_event */
	MSG_VMM_STARTED,    /* struct msg_vm_event: pid */
	MSG_VMM_EXITED,	    /* struct msg_vm_event: pid, wait status */
	MSG_VMM_PAUSED,	    /* struct msg_vm_event: status 0 or an errno */
	MSG_VMM_UNPAUSED,   /* struct msg_vm_event: status 0 or an errno */
	MSG_VM_PARAMS,	    /* struct vm_params: vmm to the VM process */
	MSG_VM_NIC,	    /* struct msg_vm_nic: an interface's addresses and locks */
	/* parent <-> priv */
	MSG_PRIV_TAP = 96,  /* struct msg_priv_tap; the reply carries the tap */
	MSG_PRIV_SWITCH,    /* struct msg_priv_switch: create or adopt its bridge */
	MSG_PRIV_RESET,	    /* struct msg_priv_switch (empty): delete the bridges priv made */
	MSG_PRIV_ATTACH,    /* struct msg_priv_tap: put a running VM's tap on its bridge */
	MSG_PRIV_DETACH,    /* struct msg_priv_tap: take a running VM's tap off its bridge */
	MSG_PRIV_REMOVE,    /* struct msg_priv_switch: forget it, delete the bridge priv made */
	MSG_PRIV_REFUSED,   /* struct msg_priv_refused: priv did not act on a request */
	/* parent to every child */
	MSG_LOG_VERBOSE = 128, /* struct msg_vm_event: status is the verbosity */
	MSG_TYPE_LAST
};

/*
 * Who asked: filled in by control from SO_PEERCRED, never by vmctl; the
 * parent overwrites it with what the kernel told it (MSG_CTL_CLIENT).
 */
struct ctl_cred {
	uint32_t uid;
	uint32_t gid;
	int32_t pid;
};

/*
 * Control tells the parent of each client once when it connects, with the
 * connection's descriptor (the parent asks the kernel who it is: SO_PEERCRED),
 * and once when it goes.  The parent ignores the cred of every request and
 * uses what the kernel said for that peer id.
 */
struct msg_ctl_client {
	uint32_t peer_id;
	uint32_t connected; /* 1: one descriptor attached; 0: gone, none */
};

struct ctl_start {
	struct ctl_cred cred;
	struct vm_params params; /* name, template_name and what the options set */
	uint32_t flags;		 /* CTL_START_* */
};

#define CTL_STOP_FORCE 0x01 /* -f: kill it now */
#define CTL_STOP_WAIT  0x02 /* -w: reply when it has stopped */
#define CTL_STOP_ALL   0x04 /* -a */

#define CTL_RESET_VMS	   0x01
#define CTL_RESET_SWITCHES 0x02
#define CTL_RESET_ALL	   (CTL_RESET_VMS | CTL_RESET_SWITCHES)

#define CTL_STATUS_RUNNING 0x01 /* -r: only VMs that are not stopped */

struct ctl_target {
	struct ctl_cred cred;
	uint32_t id;		  /* 0: by name, or none */
	char name[VM_NAME_MAX + 1];
	uint32_t flags;
};

struct ctl_path {
	struct ctl_cred cred;
	char path[PATH_MAX];
};

#define CTL_MESSAGE_MAX 512

struct ctl_result {
	int32_t error; /* 0, or an errno value that says what kind of failure */
	uint32_t id;   /* the VM's id, where there is one */
	char message[CTL_MESSAGE_MAX];
};

#define CTL_TTY_MAX   32
#define CTL_OWNER_MAX 64
#define CTL_STATE_MAX 16

struct ctl_vm_info {
	uint32_t id;
	int32_t pid; /* 0: not running */
	uint32_t cpus;
	uint64_t memory;     /* configured */
	uint64_t cur_memory; /* resident, or 0 */
	char tty[CTL_TTY_MAX];
	char owner[CTL_OWNER_MAX];
	char state[CTL_STATE_MAX];
	char name[VM_NAME_MAX + 1];
};

struct msg_vm_start {
	uint32_t vm_id;
	struct vm_params params;
};

/* What a descriptor in MSG_VM_FD is. */
enum vm_fd_kind {
	VM_FD_KVM = 1,
	VM_FD_CONSOLE, /* the pty's master side */
	VM_FD_KERNEL,
	VM_FD_INITRD,
	VM_FD_DISK, /* index: which disk, layer: which file of its chain */
	VM_FD_CDROM,
	VM_FD_TAP, /* index: which interface */
	VM_FD_NETBOOT, /* the network boot ROM, for boot device net */
	VM_FD_KIND_LAST = VM_FD_NETBOOT
};

struct msg_vm_fd {
	uint32_t vm_id;
	uint32_t kind; /* enum vm_fd_kind */
	uint32_t index;
	uint32_t layer;
	uint32_t format; /* disks: enum disk_format of this layer */
	uint32_t writable;
	char name[256]; /* for messages */
};

struct msg_vm_event {
	uint32_t vm_id;
	int32_t pid;
	int32_t status;
};

/* struct msg_priv_tap flags */
#define PRIV_TAP_LOCAL 0x01 /* give the tap addr/prefix_len */
#define PRIV_TAP_DOWN  0x02 /* leave the tap down */
#define PRIV_TAP_LOCAL6 0x04 /* also give the tap addr6/prefix6_len */
#define PRIV_TAP_GROUP	0x08 /* put the tap in device group `group` */

#define PRIV_REASON_MAX 256

struct msg_priv_tap {
	uint32_t vm_id;
	uint32_t index;
	int32_t error;	/* reply: 0 or an errno value */
	char ifname[VM_IFNAME_MAX];
	char bridge[VM_IFNAME_MAX]; /* empty: on no switch */
	uint32_t flags;		    /* PRIV_TAP_* */
	uint32_t addr;		    /* PRIV_TAP_LOCAL: the host's address, network order */
	uint32_t prefix_len;
	uint8_t addr6[16];	    /* PRIV_TAP_LOCAL6: the host's IPv6 address */
	uint32_t prefix6_len;
	uint32_t group;		    /* PRIV_TAP_GROUP: the device group's number */
	char reason[PRIV_REASON_MAX]; /* reply: what failed, when error is set */
};

/* struct msg_priv_switch flags */
#define PRIV_SWITCH_DOWN 0x01

struct msg_priv_switch {
	char name[VM_NAME_MAX + 1];
	char bridge[VM_IFNAME_MAX];
	uint32_t flags; /* PRIV_SWITCH_* */
};

/*
 * priv's answer to a switch, attach, detach or remove request it would not
 * act on (a foreign interface, a bridge that is no switch's); a refused tap
 * is answered with MSG_PRIV_TAP and its error instead.
 */
struct msg_priv_refused {
	uint32_t type;		      /* the request's */
	char ifname[VM_IFNAME_MAX];   /* the interface or bridge it named */
	char reason[PRIV_REASON_MAX];
};

/* struct msg_vm_nic flags */
#define VM_NIC_MSG_LOCAL  0x01 /* answer the guest's DHCP with guest_addr */
#define VM_NIC_MSG_LOCKED 0x02 /* drop frames from any other source MAC */

struct msg_vm_nic {
	uint32_t vm_id;
	uint32_t index;
	uint32_t flags;	     /* VM_NIC_MSG_* */
	uint32_t host_addr;  /* network order: the tap's address, router and server */
	uint32_t guest_addr; /* network order */
	uint32_t prefix_len;
};

/*
 * Readers: each returns 0 with *out filled in (strings terminated), or -1
 * when the message's type or length is not the reader's.
 */
int msg_read_ctl_start(const struct msg *, struct ctl_start *out, char *err, size_t errlen);
int msg_read_ctl_target(const struct msg *, struct ctl_target *out);
int msg_read_ctl_path(const struct msg *, struct ctl_path *out);
int msg_read_ctl_result(const struct msg *, struct ctl_result *out);
int msg_read_ctl_vm_info(const struct msg *, struct ctl_vm_info *out);
int msg_read_vm_start(const struct msg *, struct msg_vm_start *out, char *err, size_t errlen);
int msg_read_vm_params(const struct msg *, struct vm_params *out, char *err, size_t errlen);
int msg_read_vm_fd(const struct msg *, struct msg_vm_fd *out);
int msg_read_vm_event(const struct msg *, struct msg_vm_event *out);
int msg_read_priv_tap(const struct msg *, struct msg_priv_tap *out);
int msg_read_priv_switch(const struct msg *, struct msg_priv_switch *out);
int msg_read_priv_refused(const struct msg *, struct msg_priv_refused *out);
int msg_read_vm_nic(const struct msg *, struct msg_vm_nic *out);
/* Also checks the descriptor count: one when connected, none when gone. */
int msg_read_ctl_client(const struct msg *, struct msg_ctl_client *out);

/* Whether type is a request vmctl may send (what control forwards). */
int msg_is_ctl_request(uint32_t type);
/* The type's name, for logs. */
const char *msg_type_name(uint32_t type);

#endif
