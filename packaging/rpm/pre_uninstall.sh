# On erase (not upgrade), undo the per-user enablement and stop the relay.
if [ "$1" -eq 0 ]; then
    systemctl --global disable nexscoped.socket >/dev/null 2>&1 || :
    systemctl --no-reload disable --now nexscope-relay.service >/dev/null 2>&1 || :
fi
