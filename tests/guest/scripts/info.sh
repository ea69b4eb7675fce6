# Reports what the guest sees: CPUs, memory, the clock.  The host judges.
echo "vmdtest: cpus-online $(cat /sys/devices/system/cpu/online)"
echo "vmdtest: cpus $(grep -c '^processor' /proc/cpuinfo)"
echo "vmdtest: memtotal-kb $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
# RAM ranges starting at or above 4 GiB (a start of more than 8 hex digits).
echo "vmdtest: ram-ranges-above-4g $(awk '/System RAM/ { split($1, a, "-"); if (length(a[1]) > 8) n++ } END { print n + 0 }' /proc/iomem)"
# The guest's idea of the time: the kernel set it at boot from the RTC (or
# kvmclock); since_epoch reads the RTC itself.  The host compares both with
# its own clock when the line arrives.
rtc=none
[ -r /sys/class/rtc/rtc0/since_epoch ] && rtc=$(cat /sys/class/rtc/rtc0/since_epoch)
# Where the kernel runs (vmd unpacked it and chose a random virtual offset).
echo "vmdtest: kernel-text $(awk '$3 == "_text" { print $1 }' /proc/kallsyms)"
echo "vmdtest: kernel-phys $(awk '/Kernel code/ { split($1, a, "-"); print a[1] }' /proc/iomem)"
echo "vmdtest: time $(date +%s) rtc $rtc"
