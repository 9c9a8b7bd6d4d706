"""Create <AKKO_HOME>/superset/secrets.json once: Superset's SECRET_KEY and the admin password.

Standard library only: it runs in the Superset virtualenv (setup) and is called by
akko_assets.bi.server. The file is mode 0600 and never committed; re-runs keep existing values
(a new SECRET_KEY would make stored database credentials unreadable).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path


def ensure_secrets(home: Path) -> Path:
    path = home / "superset" / "secrets.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        data = json.loads(path.read_text())
        if data.get("secret_key") and data.get("admin_password"):
            return path
    data = {
        "secret_key": secrets.token_urlsafe(48),
        "admin_user": "admin",
        "admin_password": secrets.token_urlsafe(18),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_secrets.py <AKKO_HOME>")
    print(f"superset secrets: {ensure_secrets(Path(sys.argv[1]).expanduser().resolve())}")
