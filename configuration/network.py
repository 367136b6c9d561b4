"""Whether a listen address serves this machine only: the app (ui.auth) and the model server (loupe.model_server)
refuse to serve other machines unless asked to."""

from __future__ import annotations

import ipaddress


def is_loopback(address: str | None) -> bool:
    """Whether a listen address (Streamlit's `server.address`, `serve-model --host`) serves this machine only.
    Unset (""), 0.0.0.0, :: or a host name means other machines can connect."""
    address = (address or "").strip()
    if address.startswith("unix://") or address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False
