/* ACPI's checksum rule for the unit tests: a valid table's bytes sum to zero (mod 256). */
#ifndef VMD_TEST_ACPI_SUM_H
#define VMD_TEST_ACPI_SUM_H

#include <stddef.h>
#include <stdint.h>

static inline uint8_t
sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *p++);
	return s;
}

#endif
