echo "vmdtest: powering off"
poweroff -f
sleep 30
echo "vmdtest: still running after poweroff"
