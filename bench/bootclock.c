/*
 * bootclock: times a VM from process start to a marker on its console and
 * measures the VM process's memory beyond guest RAM.
 *
 *   bootclock [-l log] [-s smaps-copy] [-m ram-bytes] [-w settle-ms]
 *             [-t timeout-s] marker command [argument ...]
 *
 * Starts the command with its stdout and stderr on a pipe (stdin: a pipe
 * kept open, as a console would be) and reads that pipe until the marker
 * appears.  The clock runs from just before fork to the read that returns
 * the marker, so every engine pays the same measuring overhead: one fork,
 * one exec, one pipe wakeup per chunk of console output.  settle-ms after
 * the marker it reads /proc/PID/smaps: the guest RAM mapping is the one
 * closest in size to ram-bytes (at least that size, at most 4 MiB more),
 * and the overhead is the Rss of every other mapping.  Then it waits for
 * the command to exit (killing it timeout-s after the start when the marker
 * never came, or a minute after the marker) and prints one line:
 *
 *   boot_ns=N exit=S rss_kib=N guest_ram_kib=N overhead_kib=N mappings=N
 *
 * boot_ns is -1 when the marker never came; the exit status of bootclock
 * is then 1.  exit is the command's exit status, 128+signal, or -1 when it
 * could not be reaped (a VM stuck in the kernel ignores even SIGKILL).
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RAM_SLACK	(4ULL << 20)	/* QEMU may round its RAM block up */
#define EXIT_GRACE_NS	(60LL * 1000000000)	/* from the marker to the VM's exit */

struct options {
	const char	*log_path;
	const char	*smaps_copy;
	uint64_t	 ram_bytes;
	int		 settle_ms;
	int		 timeout_s;
	const char	*marker;
	char	       **command;
};

struct memory_sample {
	uint64_t	 rss_kib;		/* all mappings */
	uint64_t	 guest_ram_kib;		/* Rss of the guest RAM mapping */
	uint64_t	 guest_ram_size_kib;	/* its size, to pick the closest */
	int		 mappings;
};

struct console_reader {
	int		 fd;
	int		 log_fd;
	size_t		 marker_len;
	char		 tail[256];	/* the end of earlier output, for a marker split across reads */
	size_t		 tail_len;
	int		 eof;
};

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bootclock [-l log] [-s smaps-copy] [-m ram-bytes] [-w settle-ms] "
	    "[-t timeout-s] marker command [argument ...]\n");
	exit(2);
}

static long long
parse_number(const char *text, long long max, const char *what)
{
	char *end;
	long long value;

	errno = 0;
	value = strtoll(text, &end, 10);
	if (errno || end == text || *end != '\0' || value < 0 || value > max)
		errx(2, "%s %s: not a number from 0 to %lld", what, text, max);
	return value;
}

static void
parse_options(int argc, char *argv[], struct options *opt)
{
	int ch;

	*opt = (struct options){ .settle_ms = 500, .timeout_s = 300 };
	while ((ch = getopt(argc, argv, "+l:m:s:t:w:")) != -1) {
		switch (ch) {
		case 'l': opt->log_path = optarg; break;
		case 'm': opt->ram_bytes = (uint64_t)parse_number(optarg, LLONG_MAX, "ram size"); break;
		case 's': opt->smaps_copy = optarg; break;
		case 't': opt->timeout_s = (int)parse_number(optarg, 86400, "timeout"); break;
		case 'w': opt->settle_ms = (int)parse_number(optarg, 600000, "settle time"); break;
		default: usage();
		}
	}
	if (argc - optind < 2)
		usage();
	opt->marker = argv[optind];
	opt->command = argv + optind + 1;
	if (strlen(opt->marker) == 0 || strlen(opt->marker) >= sizeof(((struct console_reader *)0)->tail))
		errx(2, "marker: 1 to %zu characters", sizeof(((struct console_reader *)0)->tail) - 1);
}

static pid_t
start_command(char **command, int *console_fd, int *input_fd)
{
	int out[2], in[2];
	pid_t pid;

	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(in, O_CLOEXEC) < 0)
		err(1, "pipe");
	if ((pid = fork()) < 0)
		err(1, "fork");
	if (pid == 0) {
		if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0 ||
		    dup2(out[1], STDERR_FILENO) < 0)
			_exit(127);
		execvp(command[0], command);
		dprintf(out[1], "bootclock: %s: %s\n", command[0], strerror(errno));
		_exit(127);
	}
	close(out[1]);
	close(in[0]);
	*console_fd = out[0];
	*input_fd = in[1];
	return pid;
}

/*
 * Reads what the console has, waiting at most until deadline_ns.  Returns 1
 * when this chunk completes the marker, 0 otherwise.
 */
static int
read_console(struct console_reader *reader, const char *marker, int64_t deadline_ns)
{
	char buf[4096 + sizeof(reader->tail)];
	struct pollfd pfd = { .fd = reader->fd, .events = POLLIN };
	int64_t left_ns = deadline_ns - now_ns();
	ssize_t n;
	size_t keep;
	int found;

	if (reader->eof || left_ns <= 0)
		return 0;
	if (poll(&pfd, 1, (int)(left_ns / 1000000) + 1) <= 0)
		return 0;
	memcpy(buf, reader->tail, reader->tail_len);
	n = read(reader->fd, buf + reader->tail_len, 4096);
	if (n <= 0) {
		reader->eof = 1;
		return 0;
	}
	if (reader->log_fd >= 0 && write(reader->log_fd, buf + reader->tail_len, (size_t)n) != n)
		warn("console log");
	n += (ssize_t)reader->tail_len;
	found = memmem(buf, (size_t)n, marker, reader->marker_len) != NULL;
	keep = reader->marker_len - 1;
	if (keep > (size_t)n)
		keep = (size_t)n;
	memcpy(reader->tail, buf + n - keep, keep);
	reader->tail_len = keep;
	return found;
}

static void
drain_console(struct console_reader *reader, const char *marker, int64_t deadline_ns)
{
	while (!reader->eof && now_ns() < deadline_ns)
		read_console(reader, marker, deadline_ns);
}

static void
add_mapping(struct memory_sample *sample, const struct options *opt, uint64_t size_kib,
    uint64_t rss_kib)
{
	uint64_t size = size_kib * 1024;

	sample->mappings++;
	sample->rss_kib += rss_kib;
	if (size < opt->ram_bytes || size > opt->ram_bytes + RAM_SLACK)
		return;
	if (sample->guest_ram_size_kib == 0 || size_kib < sample->guest_ram_size_kib ||
	    (size_kib == sample->guest_ram_size_kib && rss_kib > sample->guest_ram_kib)) {
		sample->guest_ram_size_kib = size_kib;
		sample->guest_ram_kib = rss_kib;
	}
}

/* Sums the Rss of every mapping of pid and finds the guest RAM mapping. */
static int
sample_memory(pid_t pid, const struct options *opt, struct memory_sample *sample)
{
	char path[64], line[4096];
	FILE *smaps, *copy = NULL;
	uint64_t size_kib = 0, rss_kib = 0, value, start, end;
	int in_mapping = 0;

	*sample = (struct memory_sample){ 0 };
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	if ((smaps = fopen(path, "r")) == NULL) {
		warn("%s", path);
		return -1;
	}
	if (opt->smaps_copy && (copy = fopen(opt->smaps_copy, "w")) == NULL)
		warn("%s", opt->smaps_copy);
	while (fgets(line, sizeof(line), smaps)) {
		if (copy)
			fputs(line, copy);
		if (sscanf(line, "Size: %" SCNu64 " kB", &value) == 1)
			size_kib = value;
		else if (sscanf(line, "Rss: %" SCNu64 " kB", &value) == 1)
			rss_kib = value;
		else if (sscanf(line, "%" SCNx64 "-%" SCNx64 " ", &start, &end) == 2) {
			/* a mapping's header line: the previous mapping is complete */
			if (in_mapping)
				add_mapping(sample, opt, size_kib, rss_kib);
			in_mapping = 1;
			size_kib = rss_kib = 0;
		}
	}
	if (in_mapping)
		add_mapping(sample, opt, size_kib, rss_kib);
	fclose(smaps);
	if (copy)
		fclose(copy);
	return 0;
}

static int
wait_command(pid_t pid, struct console_reader *reader, const char *marker, int64_t deadline_ns)
{
	int status;
	pid_t done;

	drain_console(reader, marker, deadline_ns);
	while ((done = waitpid(pid, &status, WNOHANG)) == 0 && now_ns() < deadline_ns)
		usleep(10000);
	if (done == 0) {
		/*
		 * A VM stuck inside KVM (seen in the nested box) may not die even
		 * of SIGKILL: give up on it after a while rather than hang.
		 */
		kill(pid, SIGKILL);
		for (int i = 0; i < 1000 && (done = waitpid(pid, &status, WNOHANG)) == 0; i++)
			usleep(10000);
	}
	if (done <= 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int
main(int argc, char *argv[])
{
	struct options opt;
	struct console_reader reader = { .log_fd = -1 };
	struct memory_sample sample = { 0 };
	int64_t start_ns, deadline_ns, boot_ns = -1;
	int input_fd, status;
	pid_t pid;

	parse_options(argc, argv, &opt);
	signal(SIGPIPE, SIG_IGN);
	reader.marker_len = strlen(opt.marker);
	if (opt.log_path &&
	    (reader.log_fd = open(opt.log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		err(1, "%s", opt.log_path);

	start_ns = now_ns();
	pid = start_command(opt.command, &reader.fd, &input_fd);
	deadline_ns = start_ns + (int64_t)opt.timeout_s * 1000000000;
	while (!reader.eof && now_ns() < deadline_ns) {
		if (read_console(&reader, opt.marker, deadline_ns)) {
			boot_ns = now_ns() - start_ns;
			break;
		}
	}
	if (boot_ns >= 0) {
		drain_console(&reader, opt.marker, now_ns() + (int64_t)opt.settle_ms * 1000000);
		if (!reader.eof)
			sample_memory(pid, &opt, &sample);
	}
	/* After the marker the guest only sleeps and powers off. */
	if (boot_ns >= 0)
		deadline_ns = now_ns() + EXIT_GRACE_NS;
	status = wait_command(pid, &reader, opt.marker, deadline_ns);
	close(input_fd);
	printf("boot_ns=%" PRId64 " exit=%d rss_kib=%" PRIu64 " guest_ram_kib=%" PRIu64
	    " overhead_kib=%" PRIu64 " mappings=%d\n", boot_ns, status, sample.rss_kib,
	    sample.guest_ram_kib, sample.rss_kib - sample.guest_ram_kib, sample.mappings);
	return boot_ns >= 0 ? 0 : 1;
}
