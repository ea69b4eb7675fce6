/*
 * The VM process under the daemon: `vmd -V -F fd [-d] [-v]`, started by vmm.
 * Its parameters and every descriptor it uses (/dev/kvm, the console pty,
 * kernel, initrd, disks, taps) arrive over the socket on fd; then it
 * locks itself in (an empty chroot, seccomp) and runs.  Over the same socket
 * it takes pause and unpause.
 */
#ifndef VMD_VM_IPC_H
#define VMD_VM_IPC_H

#include <stdbool.h>

struct vm;
struct vcpu;
struct event_base;

/* Whether argv (after -V) asks for daemon mode. */
bool vm_ipc_wanted(int argc, char *argv[]);
/* Receives the VM's configuration into vm->config and sandboxes the process. */
int vm_ipc_receive(struct vm *vm, int argc, char *argv[]);
/* Watches the socket from the event thread. */
int vm_ipc_attach(struct vm *vm, struct event_base *base);
/* Called by a vCPU thread when vm->pause_requested is set: parks it until unpause. */
void vm_pause_park(struct vcpu *vcpu);

/* sandbox.h: the VM process's confinement, called once every descriptor has arrived. */

#endif
