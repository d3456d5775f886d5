# Enable the per-user socket for every user, as %systemd_user_post does.
systemctl --global preset nexscoped.socket >/dev/null 2>&1 || :
