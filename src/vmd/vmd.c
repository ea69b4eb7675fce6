#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vmd/config.h"
#include "vmd/vmd.h"

#define VMD_MAX_DEFINES 64

/* What the command line asked for. */
struct vmd_options {
	const char *conf_path;
	const char *defines[VMD_MAX_DEFINES];
	size_t ndefines;
	int debug;	/* -d: stay in the foreground, log to stderr */
	int check_only; /* -n */
	int verbose;	/* -v, repeatable */
};

static void
usage(void)
{
	fprintf(stderr, "usage: vmd [-dnv] [-D macro=value] [-f file]\n"
			"       vmd -V [-k kernel] [-I initrd] [-a cmdline] [-m size] [-p cpus]\n");
	exit(1);
}

static void
parse_options(int argc, char *argv[], struct vmd_options *opts)
{
	char err[256];
	int ch;

	opts->conf_path = VMD_CONF_PATH;
	while ((ch = getopt(argc, argv, "dnvD:f:")) != -1) {
		switch (ch) {
		case 'd':
			opts->debug = 1;
			break;
		case 'n':
			opts->check_only = 1;
			break;
		case 'v':
			opts->verbose++;
			break;
		case 'D':
			if (config_check_define(optarg, err, sizeof(err)) == -1) {
				fprintf(stderr, "vmd: %s\n", err);
				exit(1);
			}
			if (opts->ndefines >= VMD_MAX_DEFINES) {
				fprintf(stderr, "vmd: more than %d -D macros\n", VMD_MAX_DEFINES);
				exit(1);
			}
			opts->defines[opts->ndefines++] = optarg;
			break;
		case 'f':
			opts->conf_path = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
}

/*
 * vmd -n: parse and check the configuration, print it back with -v, and
 * touch nothing else (no KVM, no root needed).  Returns the exit status.
 */
static int
vmd_check_config(const struct vmd_options *opts)
{
	struct config_options copts = { opts->defines, opts->ndefines, false };
	struct vmd_config conf;
	char err[1024];

	if (config_parse_file(&conf, opts->conf_path, &copts, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (opts->verbose)
		config_print(&conf, stdout);
	config_free(&conf);
	if (fflush(stdout) == EOF) {
		perror("vmd: stdout");
		return 1;
	}
	fprintf(stderr, "configuration OK\n");
	return 0;
}

int
vmd_main(int argc, char *argv[])
{
	struct vmd_options opts = { 0 };

	parse_options(argc, argv, &opts);
	if (opts.check_only)
		return vmd_check_config(&opts);
	fprintf(stderr, "vmd: the daemon is not built yet (issue 4); see vmd -V\n");
	return 1;
}
