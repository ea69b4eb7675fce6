# The network suite's guest (tests/net/cases): configures eth0 as the
# kernel command line says -- vmdnet=ADDR/LEN, or vmdnet=dhcp for a local
# interface (udhcpc) -- pings vmdping=ADDR (or, after DHCP, the router) until
# it answers, reports, and then runs the interactive shell for later checks.
net= peer=
for word in $(cat /proc/cmdline); do
	case $word in
	vmdnet=*) net=${word#vmdnet=} ;;
	vmdping=*) peer=${word#vmdping=} ;;
	esac
done
ip link set eth0 up
if [ "$net" = dhcp ]; then
	cat > /tmp/dhcp-event <<'EOS'
#!/bin/sh
[ "$1" = bound ] || exit 0
ifconfig "$interface" "$ip" netmask "$subnet" up
echo "$ip $subnet $router" > /tmp/lease
EOS
	chmod +x /tmp/dhcp-event
	if udhcpc -i eth0 -n -q -t 10 -T 2 -s /tmp/dhcp-event > /tmp/udhcpc.log 2>&1 && [ -s /tmp/lease ]; then
		read -r ip subnet router < /tmp/lease
		echo "vmdtest: dhcp $ip netmask $subnet router $router"
		peer=${peer:-$router}
	else
		echo "vmdtest: dhcp failed: $(tail -n 2 /tmp/udhcpc.log | tr '\n' ' ')"
	fi
else
	ip addr add "$net" dev eth0
	echo "vmdtest: net $net"
fi
tries=0
until ping -c 1 -W 2 "$peer" > /dev/null 2>&1; do
	tries=$((tries + 1))
	[ $tries -ge 30 ] && break
	sleep 1
done
if [ $tries -lt 30 ]; then
	echo "vmdtest: net-ping ok $peer"
else
	echo "vmdtest: net-ping failed $peer"
fi
echo "vmdtest: shell ready"
PS1='vmdsh#
' sh -i
