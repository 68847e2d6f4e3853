"""The listening front: the public port in each TLS mode, the relay that serves TLS and plaintext
on one port, the serving certificate, and the checks made before listening.

Kept free of heavy imports, so the admin command can name the modes without loading them.
"""

from __future__ import annotations

from typing import Literal

TlsMode = Literal["permissive", "enforcing", "disabled"]
TLS_MODES: tuple[TlsMode, ...] = ("permissive", "enforcing", "disabled")
