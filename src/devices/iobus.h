/*
 * The I/O bus: port and MMIO ranges registered by devices.  A vCPU exit looks
 * the address up here and calls the device's handler.  Ranges are registered
 * while the machine is being built, before any vCPU runs, so lookups need no
 * lock.
 */
#ifndef VMD_IOBUS_H
#define VMD_IOBUS_H

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

struct iobus {
	struct io_range ranges[IOBUS_MAX_RANGES]; /* sorted by base */
	int count;
};

/* Returns -1 when the range overlaps another or the bus is full. */
int iobus_register(struct iobus *bus, uint64_t base, uint64_t len, io_handler_fn *handler, void *device);
/* Returns false when no device claims addr; a read then sees all ones. */
bool iobus_dispatch(const struct iobus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif
