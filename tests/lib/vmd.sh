# Shared helpers of the end-to-end suites that drive a real vmd with vmctl
# (tests/daemon/cases, tests/net/cases).  Sourced (bash), from the
# repository root, after the suite has set:
#   suite   its name: the scratch directory is /tmp/vmd-$suite.XXXXXX
#   BUILD   the build directory, absolute
#   limit   seconds to wait for a guest event or a vmctl answer
# It sets VMD, VMCTL_CONSOLE, VMCTL, scratch and failures, removes the
# scratch directory and kills vmd and every job at exit (after the suite's
# own suite_cleanup, when it defines one), and starts a watchdog.

VMD=$BUILD/vmd
# Consoles run as long as a case needs them; every other vmctl call gets
# $limit seconds ($VMCTL is a wrapper, made below), so that a daemon that
# stops answering fails the cases instead of hanging the suite.
VMCTL_CONSOLE=$BUILD/vmctl
failures=0
# A console whose VM is gone has no reader: writing to it must not kill us.
trap '' PIPE

scratch=$(mktemp -d "/tmp/vmd-$suite.XXXXXX") || exit 1
chmod 0755 "$scratch"
vmd_pid=
vmd_cleanup() {
	[ -n "$vmd_pid" ] && kill -KILL "$vmd_pid" 2>/dev/null
	for p in $(jobs -p); do kill "$p" 2>/dev/null; done
	declare -F suite_cleanup > /dev/null && suite_cleanup
	rm -rf "$scratch"
}
trap vmd_cleanup EXIT
VMCTL=$scratch/vmctl
cat > "$VMCTL" <<EOF
#!/bin/sh
timeout -k 5 $limit "$VMCTL_CONSOLE" "\$@"
rc=\$?
[ \$rc -eq 124 ] && echo "vmctl \$*: no answer within $limit s" >&2
exit \$rc
EOF
chmod 0755 "$VMCTL"
mkfifo "$scratch/nap"
# Watchdog: when no case has ended for 600 s, show what every process in the
# box is doing -- a hang is otherwise silent until the box's own timeout.
: > "$scratch/progress"
(
	while sleep 60; do
		[ -e "$scratch/progress" ] || exit 0
		idle=$(($(date +%s) - $(stat -c %Y "$scratch/progress")))
		[ $idle -ge 600 ] || continue
		echo "# no case ended for $idle s; the processes of the box:"
		ps -eo pid,ppid,stat,wchan:32,args | cut -c1-200 | sed 's/^/#   /'
		touch "$scratch/progress"
	done
) &
exec {napfd}<>"$scratch/nap"
# nap SECONDS: sleeps without a process (a read that times out on the FIFO).
nap() { read -r -t "$1" -u "$napfd"; }

ok() { echo "ok $1"; touch "$scratch/progress"; }
fail() {
	touch "$scratch/progress"
	echo "FAIL $1: $2"
	failures=$((failures + 1))
	[ -s "$scratch/vmd.log" ] && { echo "  vmd's log:"; tail -n 40 "$scratch/vmd.log" | sed 's/^/  | /'; }
	[ -n "${3:-}" ] && [ -s "$3" ] && { echo "  $3:"; tail -n 40 "$3" | sed 's/^/  | /'; }
}
# check NAME DESCRIPTION COMMAND...: ok when the command succeeds.
check() {
	local name=$1 what=$2
	shift 2
	if "$@"; then ok "$name"; else fail "$name" "$what"; fi
}

# until_true SECONDS COMMAND...: polls the command every 0.2 s for that
# long (wall time: a loaded box makes every poll slow).
until_true() {
	local deadline=$((SECONDS + $1))
	shift
	while [ $SECONDS -lt $deadline ]; do
		"$@" && return 0
		nap 0.2
	done
	"$@"
}

# state NAME: the VM's STATE column (empty when vmd does not know it).
state() { "$VMCTL" status 2>/dev/null | awk -v n="$1" '$NF == n { print $(NF-1) }'; }
vm_id() { "$VMCTL" status 2>/dev/null | awk -v n="$1" '$NF == n { print $1 }'; }
vm_pid() { "$VMCTL" status 2>/dev/null | awk -v n="$1" '$NF == n { print $2 }'; }
is_state() { [ "$(state "$1")" = "$2" ]; }
is_gone() { [ -z "$(state "$1")" ]; }

# start_vmd CONF: vmd -d in the background, its log in $scratch/vmd.log.
start_vmd() {
	: > "$scratch/vmd.log"
	VMD_STOP_TIMEOUT=${VMD_STOP_TIMEOUT:-8} "$VMD" -d -v -f "$1" >> "$scratch/vmd.log" 2>&1 &
	vmd_pid=$!
	until_true 20 test -S /run/vmd.sock
}

stop_vmd() {
	[ -n "$vmd_pid" ] || return 0
	kill -TERM "$vmd_pid" 2>/dev/null
	until_true 60 eval '! kill -0 $vmd_pid 2>/dev/null'
	kill -KILL "$vmd_pid" 2>/dev/null
	wait "$vmd_pid" 2>/dev/null
	vmd_pid=
}

# Consoles: console_open NAME attaches `vmctl console` with input from a FIFO
# and output to $scratch/NAME.con; console_send NAME TEXT types a line.
declare -A con_fd con_pid
console_open() {
	local name=$1
	rm -f "$scratch/$name.in"
	mkfifo "$scratch/$name.in"
	"$VMCTL_CONSOLE" console "$name" < "$scratch/$name.in" > "$scratch/$name.con" 2>&1 &
	con_pid[$name]=$!
	exec {fd}<> "$scratch/$name.in"	# read-write: never blocks, even if the reader died
	con_fd[$name]=$fd
}
console_send() { printf '%s\r' "$2" >&"${con_fd[$1]}" 2>/dev/null; }
console_has() { grep -Eq "$2" "$scratch/$1.con"; }
console_wait() { until_true "${3:-$limit}" console_has "$1" "$2"; }
# console_ask NAME COMMAND REGEX [SECONDS]: types the command until its answer
# shows (the shell may eat early input: busybox's line editor queries the
# terminal at each prompt and waits a while for the reply).
console_ask() {
	local deadline=$((SECONDS + ${4:-$limit}))
	while [ $SECONDS -lt $deadline ]; do
		console_send "$1" "$2"
		console_wait "$1" "$3" 5 && return 0
	done
	return 1
}
console_close() {
	local name=$1
	printf '\r~.' >&"${con_fd[$name]}" 2>/dev/null
	until_true 5 eval '! kill -0 ${con_pid[$name]} 2>/dev/null'
	kill -KILL "${con_pid[$name]}" 2>/dev/null
	wait "${con_pid[$name]}" 2>/dev/null
	local fd=${con_fd[$name]}
	exec {fd}>&-
}
