"""``python -m devbox``: start the cluster box (see devbox/box.py)."""

from devbox.box import main

main()
