#include "devices/iobus.h"

#include <string.h>

static int
iobus_insert(struct iobus *bus, uint64_t base, uint64_t len, io_handler_fn *handler, void *device)
{
	int i, at;

	if (len == 0 || base + len < base || bus->count == IOBUS_MAX_RANGES)
		return -1;
	for (at = 0; at < bus->count && bus->ranges[at].base < base; at++)
		;
	for (i = 0; i < bus->count; i++) {
		const struct io_range *r = &bus->ranges[i];
		if (base < r->base + r->len && r->base < base + len)
			return -1;
	}
	memmove(&bus->ranges[at + 1], &bus->ranges[at], (size_t)(bus->count - at) * sizeof(bus->ranges[0]));
	bus->ranges[at] = (struct io_range){ base, len, handler, device };
	bus->count++;
	return 0;
}

int
iobus_register(struct iobus *bus, uint64_t base, uint64_t len, io_handler_fn *handler, void *device)
{
	int rc;

	pthread_rwlock_wrlock(&bus->lock);
	rc = iobus_insert(bus, base, len, handler, device);
	pthread_rwlock_unlock(&bus->lock);
	return rc;
}

int
iobus_unregister(struct iobus *bus, uint64_t base)
{
	int rc = -1;

	pthread_rwlock_wrlock(&bus->lock);
	for (int i = 0; i < bus->count; i++)
		if (bus->ranges[i].base == base) {
			memmove(&bus->ranges[i], &bus->ranges[i + 1],
				(size_t)(bus->count - i - 1) * sizeof(bus->ranges[0]));
			bus->count--;
			rc = 0;
			break;
		}
	pthread_rwlock_unlock(&bus->lock);
	return rc;
}

static const struct io_range *
iobus_find(const struct iobus *bus, uint64_t addr)
{
	int low = 0, high = bus->count - 1;

	while (low <= high) {
		int mid = (low + high) / 2;
		const struct io_range *r = &bus->ranges[mid];
		if (addr < r->base)
			high = mid - 1;
		else if (addr - r->base >= r->len)
			low = mid + 1;
		else
			return r;
	}
	return NULL;
}

bool
iobus_dispatch(struct iobus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	const struct io_range *r;

	pthread_rwlock_rdlock(&bus->lock);
	r = iobus_find(bus, addr);
	if (r != NULL)
		r->handler(r->device, addr - r->base, data, len, is_write);
	else if (!is_write)
		memset(data, 0xff, len);
	pthread_rwlock_unlock(&bus->lock);
	return r != NULL;
}
