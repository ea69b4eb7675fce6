# An interactive shell on the console: the host types into it after the
# prompt appears, and ends the guest by typing "poweroff -f".  The prompt
# ends its line so that the host, which reads lines, sees it at once.
echo "vmdtest: shell ready"
PS1='vmdsh#
' sh -i
