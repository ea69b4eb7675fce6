/*
 * vm.conf: the parsed configuration (globals, switches, VMs) and the
 * functions that read it (parse.y) and print it back (config.c).
 */
#ifndef VMD_CONFIG_H
#define VMD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/vmconf.h"

#define VMD_CONF_PATH "/etc/vm.conf"

struct vmd_config {
	struct vmd_globals globals;
	struct vm_switch *switches;
	size_t nswitches;
	struct vm_params *vms;
	size_t nvms;
};

struct config_options {
	const char *const *defines; /* "name=value" from vmd -D: override the file */
	size_t ndefines;
	bool no_includes;	    /* refuse `include` (the fuzzer reads no files) */
};

/*
 * Each returns 0 with conf filled in, or -1 with conf empty and the first
 * error, "file:line: message", in err.
 */
int config_parse_file(struct vmd_config *conf, const char *path,
		      const struct config_options *opts, char *err, size_t errlen);
int config_parse_buffer(struct vmd_config *conf, const char *name, const char *buf,
			size_t len, const struct config_options *opts, char *err,
			size_t errlen);
void config_init(struct vmd_config *);
void config_free(struct vmd_config *);

/* Checks a -D argument ("name=value"). */
int config_check_define(const char *define, char *err, size_t errlen);

struct vm_params *config_find_vm(const struct vmd_config *, const char *name);
struct vm_switch *config_find_switch(const struct vmd_config *, const char *name);
int config_add_vm(struct vmd_config *, const struct vm_params *);
int config_add_switch(struct vmd_config *, const struct vm_switch *);

/* Prints conf in normalized vm.conf syntax, which parses back to the same. */
void config_print(const struct vmd_config *conf, FILE *out);

#endif
