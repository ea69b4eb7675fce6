# busybox acpid runs /etc/acpi/PWRF/00000080 when the power button is
# pressed (the button module reports it through evdev).  PID 1 is this
# shell script, so the handler powers off itself.
mkdir -p /etc/acpi/PWRF /var/log /var/run
cat > /etc/acpi/PWRF/00000080 <<'HANDLER'
#!/bin/sh
echo "vmdtest: power button pressed" > /dev/console
poweroff -f
HANDLER
chmod 0755 /etc/acpi/PWRF/00000080
acpid -f -c /etc/acpi &
acpid=$!
sleep 1
if kill -0 $acpid 2>/dev/null; then
	echo "vmdtest: acpid ready $(ls /dev/input 2>/dev/null | tr '\n' ' ')"
else
	echo "vmdtest: acpid did not start"
fi
while :; do sleep 1; done
