/*
 * The daemon.  One binary runs every process (DESIGN.md): the parent by
 * default, its children re-executed as `vmd -X control|vmm|priv`, and each VM
 * process as `vmd -V -F fd`.  Each process has one environment struct.
 */
#ifndef VMD_VMD_H
#define VMD_VMD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>

#include "common/proto.h"

#ifndef TAILQ_FOREACH_SAFE /* glibc's sys/queue.h lacks it */
#define TAILQ_FOREACH_SAFE(var, head, field, next)                          \
	for ((var) = TAILQ_FIRST(head); (var) && ((next) = TAILQ_NEXT(var, field), 1); \
	     (var) = (next))
#endif
#include "vmd/config.h"

#define VMD_STOP_TIMEOUT      30 /* seconds a graceful stop may take */
#define VMD_REBOOT_LIMIT      3	 /* reboots within VMD_REBOOT_WINDOW stop it */
#define VMD_REBOOT_WINDOW     6	 /* seconds */
#define VMD_MAX_WAITERS	      32
#define VMD_CHILD_FD	      3	 /* where a re-executed child finds its socket */
#define VMD_EXE_FD	      4	 /* vmm: the vmd binary, to execute VM processes */
#define VMD_MAX_DEFINES	      64

/* A VM's lifecycle (see vm_state_allows in registry.c). */
enum vm_state {
	VM_STATE_STOPPED = 0,
	VM_STATE_WAITING,  /* staggered start: queued */
	VM_STATE_STARTING, /* vmm is creating its process */
	VM_STATE_RUNNING,
	VM_STATE_PAUSED,
	VM_STATE_STOPPING,
};

/* What a request wants to do to a VM: vm_state_allows() says if it may. */
enum vm_action {
	VM_ACTION_START,
	VM_ACTION_STOP,
	VM_ACTION_PAUSE,
	VM_ACTION_UNPAUSE,
	VM_ACTION_CONSOLE,
};

/* A client waiting for a VM to stop (wait, stop -w). */
struct vm_waiter {
	uint32_t peer_id;
	bool stop_request; /* stop -w: says "stopped" rather than "exited" */
};

struct vmd_vm {
	TAILQ_ENTRY(vmd_vm) entry;
	struct vmd_env *env;
	uint32_t id;
	struct vm_params params; /* what it runs with */
	bool from_config;	 /* declared in vm.conf: kept when stopped */
	bool removed;		 /* gone from vm.conf: forget it when it stops */
	enum vm_state state;
	pid_t pid;
	char tty[CTL_TTY_MAX];
	int console_fd;		 /* the pty's slave side, held while it runs; -1: none */
	struct ctl_cred opener;	 /* opens the paths in user_set as this user */
	uint32_t user_set;	 /* VM_SET_* given by a non-root user */
	bool boot_once;		 /* vmctl start -B: that boot device for this boot only */
	int locks[VM_MAX_DISKS]; /* write-locked disks (OFD locks), held while it runs */
	int nlocks;
	time_t reboots[VMD_REBOOT_LIMIT + 1];
	int nreboots;
	uint32_t pause_peer;	 /* who waits for the pause/unpause reply; 0: none */
	struct vm_waiter waiters[VMD_MAX_WAITERS];
	int nwaiters;
	struct event *stop_timer;
	uint32_t stop_peer;	 /* stop -w whose timeout is reported */
};

TAILQ_HEAD(vmd_vm_list, vmd_vm);

struct vmd_options {
	const char *conf_path;
	const char *defines[VMD_MAX_DEFINES];
	size_t ndefines;
	int debug;	/* -d: stay in the foreground, log to stderr */
	int check_only; /* -n */
	int verbose;	/* -v, repeatable */
};

struct event_base;
struct vmd_env;

/*
 * The daemon's processes, in the order the parent starts its children
 * (priv first, control last: clients come in once everything runs).
 */
enum proc_id {
	PROC_PARENT,
	PROC_PRIV,
	PROC_VMM,
	PROC_CONTROL,
	PROC_VM, /* spawned by vmm, one per VM */
	PROC_MAX
};

/* The descriptor a child finds on VMD_EXE_FD, besides its socket on VMD_CHILD_FD. */
enum proc_pass {
	PROC_PASS_NOTHING,
	PROC_PASS_CONTROL_SOCKET, /* /run/vmd.sock, listening */
	PROC_PASS_EXECUTABLE,	  /* the vmd binary, to execute VM processes */
};

/* What proc_run() hands a child's main, and keeps for its parent watch. */
struct proc_child {
	const struct vmd_proc *proc;
	struct event_base *base;
	int parent_fd;
	int passed_fd; /* VMD_EXE_FD, or -1 */
	int debug, verbose;
	void *env;     /* the process's environment: its main sets it */
	struct msg_buf buf;
};

/*
 * One row of procs[] (proc.c): a process and its powers.  vmd.8's
 * PROCESSES section says the same in words.
 */
struct vmd_proc {
	const char *name;      /* `vmd -X name`, and its log name */
	const char *user;      /* the account it becomes; NULL: stays root */
	bool empty_root;       /* chroot to VMD_EMPTY_DIR */
	bool files_as_nobody;  /* opens files as uid and gid 65534 (fsuid, fsgid) */
	int namespaces;	       /* CLONE_NEW* it enters */
	uint64_t caps;	       /* capabilities kept (bounding set included) */
	int death_signal;      /* what the parent's death sends it */
	enum proc_pass passes; /* what the parent passes on VMD_EXE_FD */
	int (*filter)(void);   /* installs its seccomp filter */
	int (*confine)(void);  /* all of the above, as the process does it */
	int (*main)(struct proc_child *);		  /* sets its environment and events up */
	void (*dispatch)(void *env, struct msg *);	  /* a message from the parent */
	void (*parent_gone)(void *env);			  /* its parent's socket closed */
	void (*parent_dispatch)(struct vmd_env *, struct msg *); /* in the parent: one from it */
	enum proc_id spawned_by;
};

extern const struct vmd_proc procs[PROC_MAX];

struct vmd_child {
	const char *name;
	enum proc_id id; /* its row in procs[] */
	struct vmd_env *env;
	pid_t pid;
	int fd;
	struct event *ev;
	struct msg_channel out; /* queued writes: the parent never blocks on a child */
};

/* A client of control, as the kernel described its connection. */
struct vmd_peer {
	TAILQ_ENTRY(vmd_peer) entry;
	uint32_t id;
	struct ctl_cred cred;
};

TAILQ_HEAD(vmd_peer_list, vmd_peer);

/* The parent's environment. */
struct vmd_env {
	struct vmd_options opts;
	struct vmd_config conf;
	struct vmd_vm_list vms;
	uint32_t next_id;
	struct event_base *base;
	struct vmd_child control, vmm, priv;
	struct vmd_peer_list peers; /* control's clients (MSG_CTL_CLIENT) */
	struct sockaddr_un control_addr; /* /run/vmd.sock as bound: a client's socket must be accepted on it */
	socklen_t control_addr_len;	 /* 0: not bound (tests) */
	int npeers;
	struct vmd_child *children[PROC_MAX]; /* by row of procs[]: the three above */
	uid_t vmd_uid;
	gid_t vmd_gid;
	bool shutting_down;
	struct event *shutdown_timer;
	struct event *stagger_timer;
	int stop_timeout;	/* seconds: VMD_STOP_TIMEOUT or $VMD_STOP_TIMEOUT */
};

/* vmd.c */
int vmd_main(int argc, char *argv[]);
void vmd_send_child(struct vmd_env *, struct vmd_child *, uint32_t type, uint32_t peer,
		    const void *data, size_t len, const int *fds, int nfds);
void vmd_reply(struct vmd_env *, uint32_t peer, int error, uint32_t id, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void vmd_check_shutdown(struct vmd_env *);
void vmd_priv_refused(const struct msg *);
/*
 * Sends what is queued for the child, waiting at most timeout_ms each time
 * its socket is full (the bounded round trip to priv).  0, or -1.
 */
int vmd_flush_child(struct vmd_child *, int timeout_ms);
/* MSG_CTL_CLIENT: learns or forgets a peer's credentials (from the kernel). */
void vmd_peer_update(struct vmd_env *, struct msg *);
/*
 * Writes the kernel's credentials of the request's peer over the cred that
 * opens every request's payload (copied to out).  -1: a peer the parent was
 * never told about, or a payload too short to hold a cred.
 */
int vmd_peer_apply_cred(struct vmd_env *, struct msg *, uint8_t *out, size_t outlen);
void vmd_dispatch_priv(struct vmd_env *, struct msg *);
/* control's messages: requests, their credentials replaced by the kernel's, and clients. */
void vmd_control_message(struct vmd_env *, struct msg *);

/* proc.c: the table of processes, re-executed children, their common setup */
int proc_main(int argc, char *argv[]);
int proc_run(const struct vmd_proc *, int debug, int verbose);
pid_t proc_spawn(const char *name, int exe_fd, int sock, int extra_fd, int debug, int verbose);
int proc_lookup_user(uid_t *uid, gid_t *gid);

/* confine.c: roots, identities, capabilities, filters of parent, control, priv */
int proc_confine(const struct vmd_proc *);
int confine_capabilities(uint64_t keep);
int parent_confine(void);
int control_confine(void);
int priv_confine(void);
int filter_parent(void);
int filter_control(void);
int filter_priv(void);

/* vmm_confine.c: vmm's identity, root and filter */
int vmm_confine(void);

/* control.c, vmm.c, priv.c: the children's entries */
int control_main(struct proc_child *);
void control_dispatch(void *env, struct msg *);
int vmm_main(struct proc_child *);
void vmm_dispatch(void *env, struct msg *);
void vmm_parent_gone(void *env);
int priv_main(struct proc_child *);
void priv_dispatch(void *env, struct msg *);
void priv_parent_gone(void *env);

/* registry.c: the VMs the parent knows, and the pure rules about them */
struct vmd_vm *vm_find(struct vmd_env *, uint32_t id, const char *name);
struct vmd_vm *vm_find_id(struct vmd_env *, uint32_t id);
struct vmd_vm *vm_add(struct vmd_env *, const struct vm_params *, bool from_config);
void vm_remove(struct vmd_env *, struct vmd_vm *);
const char *vm_state_name(enum vm_state);
int vm_state_allows(enum vm_state, enum vm_action, char *err, size_t errlen);
bool vm_may_control(const struct vm_params *, uint32_t uid, const uint32_t *gids,
		    int ngids);
bool vm_cred_may_control(const struct vm_params *, const struct ctl_cred *);
bool vm_cred_may_instantiate(const struct vm_params *tmpl, const struct ctl_cred *);
void vm_user_usage(const struct vmd_env *, uint32_t uid, struct vmd_usage *);
int vm_check_start_limit(const struct vmd_env *, const struct vmd_vm *, const struct ctl_cred *,
			 char *err, size_t errlen);
bool vm_reboot_allowed(struct vmd_vm *, time_t now);
int vm_resolve_target(const char *text, uint32_t *id, char *name, size_t namelen);

/* launch.c: starting a VM (opening its files) and its exit */
int vm_launch(struct vmd_env *, struct vmd_vm *, char *err, size_t errlen);
void vm_exited(struct vmd_env *, struct vmd_vm *, int wait_status);
void vm_request_stop(struct vmd_env *, struct vmd_vm *, bool force);
void vm_stagger_start(struct vmd_env *);

/* switches.c: switches (bridges, through priv) and what each tap needs */
void vmd_switch_bridge(const struct vm_switch *, char out[VM_IFNAME_MAX]);
int vmd_tap_name(const struct vmd_vm *, uint32_t index, char out[VM_IFNAME_MAX]);
const struct vm_switch *vmd_nic_switch(const struct vmd_env *, const struct vm_nic *,
				       uint32_t index, char *err, size_t errlen);
int vmd_tap_request(const struct vmd_env *, const struct vmd_vm *, uint32_t index,
		    struct msg_priv_tap *tap, struct msg_vm_nic *vnic, char *err, size_t errlen);
void vmd_send_switches(struct vmd_env *);
void vmd_reload_switches(struct vmd_env *, const struct vm_switch *old, size_t nold);
int vmd_reset_switches(struct vmd_env *, char *err, size_t errlen);

/* requests.c: vmctl's requests, as control forwards them */
void vmd_dispatch_control(struct vmd_env *, struct msg *);
void vmd_dispatch_vmm(struct vmd_env *, struct msg *);
int vmd_load_config(struct vmd_env *, const char *path, bool replace, char *err,
		    size_t errlen);

#endif
