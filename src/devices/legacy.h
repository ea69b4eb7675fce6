/* Legacy PC devices that need nothing but their registration. */
#ifndef VMD_LEGACY_H
#define VMD_LEGACY_H

struct vm;

#include <stdint.h>

int rtc_init(struct vm *vm);
/* Sets a byte of CMOS RAM (not the clock), e.g. the memory size firmware reads. */
void rtc_nvram_set(struct vm *vm, uint8_t reg, uint8_t value);
int i8042_init(struct vm *vm);
int debug_ports_init(struct vm *vm);

#endif
