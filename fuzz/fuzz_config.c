/*
 * libFuzzer target for vm.conf: the lexer, the grammar and the checks.
 * Any input must either fail with a message or parse; what parses must
 * print in normalized form, and that form must parse again and print the
 * same (the round trip `vmd -n -v` promises).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmd/config.h"

static char *
print_config(const struct vmd_config *conf, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	if (f == NULL)
		abort();
	config_print(conf, f);
	if (fclose(f) != 0)
		abort();
	return text;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct config_options opts = { .no_includes = true };
	struct vmd_config conf, again;
	char err[1024], *first, *second;
	size_t first_len, second_len;

	if (config_parse_buffer(&conf, "fuzz.conf", (const char *)data, size, &opts, err,
				sizeof(err)) == -1) {
		if (strncmp(err, "fuzz.conf:", 10) != 0)
			abort(); /* every error names the file and line */
		return 0;
	}
	first = print_config(&conf, &first_len);
	config_free(&conf);
	if (config_parse_buffer(&again, "normalized.conf", first, first_len, &opts, err,
				sizeof(err)) == -1) {
		fprintf(stderr, "normalized output does not parse: %s\n%s", err, first);
		abort();
	}
	second = print_config(&again, &second_len);
	config_free(&again);
	if (first_len != second_len || memcmp(first, second, first_len) != 0) {
		fprintf(stderr, "round trip differs:\n%s\n----\n%s", first, second);
		abort();
	}
	free(first);
	free(second);
	return 0;
}
