/*
 * The I/O bus: port and MMIO ranges registered by devices.  A vCPU exit looks
 * the address up here and calls the device's handler.  Most ranges are
 * registered while the machine is being built; PCI BARs move when the guest
 * programs them, so lookups take the bus's lock for reading (uncontended
 * but for those rare moves).  A handler must not register or unregister on
 * the bus it was called from.
 */
#ifndef VMD_IOBUS_H
#define VMD_IOBUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * One signature for port and MMIO accesses: offset is relative to the start
 * of the registered range, data holds len bytes (1, 2, 4 or 8), written by the
 * handler on a read.
 */
typedef void io_handler_fn(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

struct io_range {
	uint64_t base;
	uint64_t len;
	io_handler_fn *handler;
	void *device;
};

#define IOBUS_MAX_RANGES 128

/* All zeros is an empty bus (glibc's rwlock initializer is all zeros). */
struct iobus {
	pthread_rwlock_t lock;
	struct io_range ranges[IOBUS_MAX_RANGES]; /* sorted by base */
	int count;
};

/* Returns -1 when the range overlaps another or the bus is full. */
int iobus_register(struct iobus *bus, uint64_t base, uint64_t len, io_handler_fn *handler, void *device);
/* Removes the range that starts at base; returns -1 when there is none. */
int iobus_unregister(struct iobus *bus, uint64_t base);
/* Returns false when no device claims addr; a read then sees all ones. */
bool iobus_dispatch(struct iobus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif
