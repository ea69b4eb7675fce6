echo "vmdtest: rebooting"
reboot -f
sleep 30
echo "vmdtest: still running after reboot"
