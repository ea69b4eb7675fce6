# busybox acpid runs /etc/acpi/PWRF/00000080 when the power button is
# pressed (the button module reports it through evdev).  PID 1 is this
# shell script, so the handler powers off itself.
mkdir -p /etc/acpi/PWRF
cat > /etc/acpi/PWRF/00000080 <<'HANDLER'
#!/bin/sh
echo "vmdtest: power button pressed" > /dev/console
poweroff -f
HANDLER
chmod 0755 /etc/acpi/PWRF/00000080
ls /dev/input/ > /dev/null 2>&1 || echo "vmdtest: no /dev/input"
acpid -f -c /etc/acpi &
sleep 1
echo "vmdtest: acpid ready $(ls /dev/input 2>/dev/null | tr '\n' ' ')"
while :; do sleep 1; done
