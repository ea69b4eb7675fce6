/*
 * The CMOS real-time clock at ports 0x70/0x71.  It reads the host's UTC time
 * (plus whatever offset the guest set), and keeps the rest of the 128 bytes
 * of CMOS RAM.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "devices/legacy.h"
#include "vm/vm.h"

#define RTC_PORT	  0x70
#define CMOS_SIZE	  128
#define REG_SECONDS	  0x00
#define REG_MINUTES	  0x02
#define REG_HOURS	  0x04
#define REG_WEEKDAY	  0x06
#define REG_DAY		  0x07
#define REG_MONTH	  0x08
#define REG_YEAR	  0x09
#define REG_A		  0x0a
#define REG_B		  0x0b
#define REG_C		  0x0c
#define REG_D		  0x0d
#define REG_CENTURY	  0x32
#define REG_A_DIVIDER	  0x26 /* 32.768 kHz time base, 1024 Hz rate; UIP clear */
#define REG_B_SET	  0x80 /* the guest is setting the clock */
#define REG_B_BINARY	  0x04
#define REG_B_24H	  0x02
#define REG_D_POWER_GOOD  0x80

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[CMOS_SIZE];
	time_t offset;	    /* guest time minus host time */
	struct tm setting;  /* what the guest writes while REG_B_SET is on */
};

static uint8_t
rtc_encode(const struct rtc *rtc, int value)
{
	if (rtc->cmos[REG_B] & REG_B_BINARY)
		return (uint8_t)value;
	return (uint8_t)((value / 10) << 4 | value % 10);
}

static int
rtc_decode(const struct rtc *rtc, uint8_t value)
{
	if (rtc->cmos[REG_B] & REG_B_BINARY)
		return value;
	return (value >> 4) * 10 + (value & 0x0f);
}

static int
rtc_time_field(const struct tm *tm, uint8_t reg)
{
	switch (reg) {
	case REG_SECONDS: return tm->tm_sec;
	case REG_MINUTES: return tm->tm_min;
	case REG_HOURS: return tm->tm_hour;
	case REG_WEEKDAY: return tm->tm_wday + 1;
	case REG_DAY: return tm->tm_mday;
	case REG_MONTH: return tm->tm_mon + 1;
	case REG_YEAR: return tm->tm_year % 100;
	default: return (tm->tm_year + 1900) / 100; /* REG_CENTURY */
	}
}

static int
rtc_is_time_register(uint8_t reg)
{
	return reg == REG_SECONDS || reg == REG_MINUTES || reg == REG_HOURS || reg == REG_WEEKDAY ||
	       reg == REG_DAY || reg == REG_MONTH || reg == REG_YEAR || reg == REG_CENTURY;
}

static uint8_t
rtc_read(struct rtc *rtc, uint8_t reg)
{
	struct tm tm;
	time_t now;

	if (!rtc_is_time_register(reg))
		return rtc->cmos[reg];
	if (rtc->cmos[REG_B] & REG_B_SET) {
		tm = rtc->setting;
	} else {
		now = time(NULL) + rtc->offset;
		gmtime_r(&now, &tm);
	}
	return rtc_encode(rtc, rtc_time_field(&tm, reg));
}

static void
rtc_store_setting(struct rtc *rtc, uint8_t reg, int value)
{
	struct tm *tm = &rtc->setting;

	switch (reg) {
	case REG_SECONDS: tm->tm_sec = value; break;
	case REG_MINUTES: tm->tm_min = value; break;
	case REG_HOURS: tm->tm_hour = value; break;
	case REG_DAY: tm->tm_mday = value; break;
	case REG_MONTH: tm->tm_mon = value - 1; break;
	case REG_YEAR: tm->tm_year = (tm->tm_year / 100) * 100 + value; break;
	case REG_CENTURY: tm->tm_year = value * 100 + tm->tm_year % 100 - 1900; break;
	default: break;
	}
}

static void
rtc_write(struct rtc *rtc, uint8_t reg, uint8_t value)
{
	time_t now;

	switch (reg) {
	case REG_A:
		rtc->cmos[REG_A] = value & 0x7f;
		return;
	case REG_B:
		if ((value & REG_B_SET) && !(rtc->cmos[REG_B] & REG_B_SET)) {
			now = time(NULL) + rtc->offset;
			gmtime_r(&now, &rtc->setting);
		} else if (!(value & REG_B_SET) && (rtc->cmos[REG_B] & REG_B_SET)) {
			rtc->offset = timegm(&rtc->setting) - time(NULL);
		}
		rtc->cmos[REG_B] = value;
		return;
	case REG_C:
	case REG_D:
		return; /* read-only */
	default:
		if (rtc_is_time_register(reg) && (rtc->cmos[REG_B] & REG_B_SET))
			rtc_store_setting(rtc, reg, rtc_decode(rtc, value));
		else if (!rtc_is_time_register(reg))
			rtc->cmos[reg] = value;
	}
}

static void
rtc_io(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rtc *rtc = device;

	pthread_mutex_lock(&rtc->lock);
	if (offset == 0) {
		if (is_write)
			rtc->index = data[0] & 0x7f; /* bit 7 masks NMIs: nothing to mask here */
		else
			data[0] = 0xff;
	} else if (is_write) {
		rtc_write(rtc, rtc->index, data[0]);
	} else {
		data[0] = rtc_read(rtc, rtc->index);
	}
	pthread_mutex_unlock(&rtc->lock);
	for (uint32_t i = 1; !is_write && i < len; i++)
		data[i] = 0xff;
}

int
rtc_init(struct vm *vm)
{
	struct rtc *rtc = calloc(1, sizeof(*rtc));

	if (rtc == NULL)
		return -1;
	pthread_mutex_init(&rtc->lock, NULL);
	rtc->cmos[REG_A] = REG_A_DIVIDER;
	rtc->cmos[REG_B] = REG_B_24H;
	rtc->cmos[REG_D] = REG_D_POWER_GOOD;
	vm->rtc = rtc;
	return iobus_register(&vm->port_bus, RTC_PORT, 2, rtc_io, rtc);
}

void
rtc_nvram_set(struct vm *vm, uint8_t reg, uint8_t value)
{
	struct rtc *rtc = vm->rtc;

	if (reg >= CMOS_SIZE || rtc_is_time_register(reg) || reg <= REG_D)
		return;
	pthread_mutex_lock(&rtc->lock);
	rtc->cmos[reg] = value;
	pthread_mutex_unlock(&rtc->lock);
}
