# virtio-rng: the kernel picked it as its hardware RNG and /dev/hwrng gives
# bytes that look random (the host judges).
echo "vmdtest: rng-current $(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
hex=$(dd if=/dev/hwrng bs=256 count=4 2>/dev/null | od -An -v -tx1 | tr -d ' \n')
echo "vmdtest: rng-hex-length ${#hex}"
echo "vmdtest: rng-distinct $(echo "$hex" | sed 's/../&\n/g' | grep . | sort -u | wc -l)"
