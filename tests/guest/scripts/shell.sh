# An interactive shell on the console: the host types into it after the
# prompt appears, and ends the guest by typing "poweroff -f".
echo "vmdtest: shell ready"
PS1='vmdsh# ' sh -i
