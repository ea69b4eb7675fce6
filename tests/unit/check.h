/*
 * A minimal unit test harness.  Each TEST prints "ok name" or "FAIL name"
 * (tests/check counts those lines); CHECK records a failure with its line.
 */
#ifndef VMD_TEST_CHECK_H
#define VMD_TEST_CHECK_H

#include <stdio.h>

static int check_failures;
static int check_case_failed;

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stdout, "  %s:%d: CHECK(%s) failed\n", __FILE__, \
				__LINE__, #cond);                                \
			check_case_failed = 1;                                   \
		}                                                                \
	} while (0)

#define RUN_TEST(fn)                                                              \
	do {                                                                      \
		check_case_failed = 0;                                            \
		fn();                                                             \
		printf("%s %s\n", check_case_failed ? "FAIL" : "ok", #fn);        \
		check_failures += check_case_failed;                              \
	} while (0)

#define TEST_EXIT() return check_failures ? 1 : 0

#endif
