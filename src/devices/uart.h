/* The 8250/16550A serial port, COM1: the guest's console. */
#ifndef VMD_UART_H
#define VMD_UART_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct uart;

#define UART_COM1_PORT 0x3f8

/* Creates COM1 writing the guest's output to out_fd; stores it in vm->uart. */
int uart_init(struct vm *vm, int out_fd);
/* Bytes from the console for the guest; returns how many fit. */
size_t uart_receive(struct uart *uart, const uint8_t *bytes, size_t len);
/* How many more bytes uart_receive would take now. */
size_t uart_room(struct uart *uart);

#endif
