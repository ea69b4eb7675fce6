/*
 * A 16550A UART.  Output is written straight to the console fd; input
 * arrives from the VM process's event thread through uart_receive().  State
 * is shared between vCPU threads and the event thread under one mutex, which
 * is never held across a system call.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "devices/uart.h"
#include "vm/vm.h"

/* Register offsets from the base port. */
enum {
	REG_DATA = 0, /* RBR/THR, or DLL with DLAB */
	REG_IER = 1,  /* or DLM with DLAB */
	REG_IIR_FCR = 2,
	REG_LCR = 3,
	REG_MCR = 4,
	REG_LSR = 5,
	REG_MSR = 6,
	REG_SCR = 7,
};

#define IER_RX_DATA	0x01
#define IER_THR_EMPTY	0x02
#define IIR_NONE	0x01
#define IIR_THR_EMPTY	0x02
#define IIR_RX_DATA	0x04
#define IIR_FIFO_ON	0xc0
#define FCR_FIFO_ENABLE 0x01
#define FCR_CLEAR_RX	0x02
#define LCR_DLAB	0x80
#define MCR_LOOPBACK	0x10
#define LSR_DATA_READY	0x01
#define LSR_THR_EMPTY	0x20
#define LSR_IDLE	0x40
#define MSR_CTS_DSR_DCD 0xb0

#define UART_RX_SIZE	4096

struct uart {
	struct vm *vm;
	int out_fd;
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thr_empty_pending; /* the THR-empty interrupt waits to be seen */
	int irq_level;
	uint8_t rx[UART_RX_SIZE];
	size_t rx_head, rx_count;
};

static uint8_t
uart_iir(const struct uart *u)
{
	uint8_t fifo = (u->fcr & FCR_FIFO_ENABLE) ? IIR_FIFO_ON : 0;

	if ((u->ier & IER_RX_DATA) && u->rx_count)
		return fifo | IIR_RX_DATA;
	if ((u->ier & IER_THR_EMPTY) && u->thr_empty_pending)
		return fifo | IIR_THR_EMPTY;
	return fifo | IIR_NONE;
}

/* Called with the lock held; returns the new level when it changed, else -1. */
static int
uart_irq_change(struct uart *u)
{
	int level = !(uart_iir(u) & IIR_NONE);

	if (level == u->irq_level)
		return -1;
	u->irq_level = level;
	return level;
}

static void
uart_rx_push(struct uart *u, uint8_t byte)
{
	if (u->rx_count < UART_RX_SIZE) {
		u->rx[(u->rx_head + u->rx_count) % UART_RX_SIZE] = byte;
		u->rx_count++;
	}
}

static uint8_t
uart_rx_pop(struct uart *u)
{
	uint8_t byte;

	if (u->rx_count == 0)
		return 0;
	byte = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % UART_RX_SIZE;
	u->rx_count--;
	return byte;
}

static uint8_t
uart_msr(const struct uart *u)
{
	/* In loopback the modem control outputs come back as the status inputs. */
	if (u->mcr & MCR_LOOPBACK)
		return (uint8_t)((u->mcr & 0x01) << 5 | (u->mcr & 0x02) << 3 | (u->mcr & 0x04) << 4 |
				 (u->mcr & 0x08) << 4);
	return MSR_CTS_DSR_DCD;
}

static uint8_t
uart_read(struct uart *u, uint64_t reg)
{
	uint8_t iir;

	switch (reg) {
	case REG_DATA:
		return (u->lcr & LCR_DLAB) ? u->dll : uart_rx_pop(u);
	case REG_IER:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case REG_IIR_FCR:
		iir = uart_iir(u);
		if ((iir & 0x0f) == IIR_THR_EMPTY)
			u->thr_empty_pending = false;
		return iir;
	case REG_LCR:
		return u->lcr;
	case REG_MCR:
		return u->mcr;
	case REG_LSR:
		return LSR_THR_EMPTY | LSR_IDLE | (u->rx_count ? LSR_DATA_READY : 0);
	case REG_MSR:
		return uart_msr(u);
	default:
		return u->scr;
	}
}

/* Returns true when byte must go out to the console. */
static bool
uart_write(struct uart *u, uint64_t reg, uint8_t value)
{
	switch (reg) {
	case REG_DATA:
		if (u->lcr & LCR_DLAB) {
			u->dll = value;
			return false;
		}
		u->thr_empty_pending = true;
		if (u->mcr & MCR_LOOPBACK) {
			uart_rx_push(u, value);
			return false;
		}
		return true;
	case REG_IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = value;
		} else {
			if ((value & IER_THR_EMPTY) && !(u->ier & IER_THR_EMPTY))
				u->thr_empty_pending = true;
			u->ier = value & 0x0f;
		}
		return false;
	case REG_IIR_FCR:
		u->fcr = value & FCR_FIFO_ENABLE;
		if (value & FCR_CLEAR_RX)
			u->rx_count = 0;
		return false;
	case REG_LCR:
		u->lcr = value;
		return false;
	case REG_MCR:
		u->mcr = value & 0x1f;
		return false;
	case REG_SCR:
		u->scr = value;
		return false;
	default:
		return false; /* LSR and MSR are read-only */
	}
}

static void
uart_io(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct uart *u = device;
	bool transmit = false;
	int level;

	pthread_mutex_lock(&u->lock);
	if (is_write)
		transmit = uart_write(u, offset, data[0]);
	else
		data[0] = uart_read(u, offset);
	/* Under the lock, so that the line's changes reach KVM in the order they were made. */
	level = uart_irq_change(u);
	if (level >= 0)
		vm_irq_line(u->vm, IRQ_COM1, level);
	pthread_mutex_unlock(&u->lock);

	for (uint32_t i = 1; !is_write && i < len; i++)
		data[i] = 0xff;
	if (transmit && write(u->out_fd, data, 1) < 0) {
		/* The console reader went away: the guest keeps running. */
	}
}

size_t
uart_room(struct uart *u)
{
	size_t room;

	pthread_mutex_lock(&u->lock);
	room = UART_RX_SIZE - u->rx_count;
	pthread_mutex_unlock(&u->lock);
	return room;
}

size_t
uart_receive(struct uart *u, const uint8_t *bytes, size_t len)
{
	size_t taken;
	int level;

	pthread_mutex_lock(&u->lock);
	for (taken = 0; taken < len && u->rx_count < UART_RX_SIZE; taken++)
		uart_rx_push(u, bytes[taken]);
	level = uart_irq_change(u);
	if (level >= 0)
		vm_irq_line(u->vm, IRQ_COM1, level);
	pthread_mutex_unlock(&u->lock);
	return taken;
}

int
uart_init(struct vm *vm, int out_fd)
{
	struct uart *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return -1;
	u->vm = vm;
	u->out_fd = out_fd;
	pthread_mutex_init(&u->lock, NULL);
	vm->uart = u;
	return iobus_register(&vm->port_bus, UART_COM1_PORT, 8, uart_io, u);
}
