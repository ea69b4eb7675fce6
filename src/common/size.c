#include "common/size.h"

#include <ctype.h>

static int
size_multiplier(const char *suffix, uint64_t unit, uint64_t *mult)
{
	static const char letters[] = "KMGT";

	if (*suffix == '\0') {
		*mult = unit;
		return 0;
	}
	for (int i = 0; letters[i]; i++) {
		if (toupper((unsigned char)*suffix) == letters[i]) {
			*mult = 1ULL << (10 * (i + 1));
			return suffix[1] == '\0' ? 0 : -1;
		}
	}
	return -1;
}

int
size_parse(const char *text, uint64_t unit, uint64_t *bytes)
{
	uint64_t whole = 0, frac = 0, frac_scale = 1, mult;
	const char *p = text;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		uint64_t digit = (uint64_t)(*p - '0');

		if (whole > (UINT64_MAX - digit) / 10)
			return -1;
		whole = whole * 10 + digit;
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		for (; isdigit((unsigned char)*p); p++) {
			if (frac_scale < 1000000000000ULL) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				frac_scale *= 10;
			}
		}
	}
	if (size_multiplier(p, unit, &mult) < 0)
		return -1;
	if (mult == 1 && frac_scale > 1)
		return -1; /* a fraction of a byte */
	if (whole > UINT64_MAX / mult)
		return -1;
	/* frac / frac_scale * mult without overflow: mult is at most 2^40, frac_scale at most 10^12. */
	*bytes = whole * mult + (uint64_t)((unsigned __int128)frac * mult / frac_scale);
	return 0;
}
