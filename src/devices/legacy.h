/* Legacy PC devices that need nothing but their registration. */
#ifndef VMD_LEGACY_H
#define VMD_LEGACY_H

struct vm;

int rtc_init(struct vm *vm);
int i8042_init(struct vm *vm);
int debug_ports_init(struct vm *vm);

#endif
