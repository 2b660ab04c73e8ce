#!/bin/sh
# Adds GAN Studio to this user's application menu (and as an "Open with" choice for images), pointing at this
# folder: run it again after moving the folder; remove the two files it names to undo it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/scalable/apps"
mkdir -p "$apps" "$icons"
cp "$here/ganstudio.svg" "$icons/ganstudio.svg"
sed "s|^Exec=ganstudio|Exec=\"$here/ganstudio\"|" "$here/ganstudio.desktop" > "$apps/ganstudio.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database "$apps" || true
echo "Installed $apps/ganstudio.desktop and $icons/ganstudio.svg"
