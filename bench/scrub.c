/*
 * scrub: rewrites the memory that the previous guest of the nested box ran
 * code from, so that the next boot does not pay for it.
 *
 *   scrub MiB
 *
 * Allocates MiB of anonymous memory, writes every page and exits (which
 * frees it again).  Why: in the nested box the CPU is QEMU's TCG, which keeps
 * translated code per physical page of the box.  When a guest exits, the box
 * kernel frees its RAM, and the next process to get those pages (the next
 * engine's guest RAM) has the kernel zero them -- every store to a page that
 * still has translated code on it takes TCG's slow path (measured: ~0.3-0.5 s
 * per 2 MiB page instead of ~10 ms, 2-3 s per boot, in whichever engine
 * boots next, for code that its predecessor ran).  Recently freed pages are
 * handed out first, so allocating and writing a few hundred MiB right after a
 * boot takes them all.  The benchmark runs it before every boot of every
 * engine, outside the timed part.  Hardware has no such cost.
 */
#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int
main(int argc, char *argv[])
{
	long page = sysconf(_SC_PAGESIZE);
	char *end;
	unsigned long mib;
	size_t size;
	volatile char *memory;

	if (argc != 2)
		errx(2, "usage: scrub MiB");
	mib = strtoul(argv[1], &end, 10);
	if (*argv[1] == '\0' || *end != '\0' || mib == 0 || mib > 65536)
		errx(2, "%s: not a size in MiB from 1 to 65536", argv[1]);
	size = (size_t)mib << 20;
	memory = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (memory == MAP_FAILED)
		err(1, "%lu MiB", mib);
	/* Huge pages as the guests get them: the same pages, fewer faults. */
	(void)madvise((void *)memory, size, MADV_HUGEPAGE);
	for (size_t offset = 0; offset < size; offset += (size_t)page)
		memory[offset] = 1;
	return 0;
}
