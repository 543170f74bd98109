"""``python -m avatar_client``: see :mod:`avatar_client.cli`."""

from avatar_client.cli import main

raise SystemExit(main())
