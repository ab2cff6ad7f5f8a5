"""The challenger: a different kind of model, refit now and then, that may win the serving slot.

Saved with skops, whose loader rebuilds objects from a list of types instead of running
pickle's instructions; :func:`load_skops` refuses a file holding any type not listed here.
"""

from __future__ import annotations

# Every type a challenger artifact may hold; anything else is refused before loading.
TRUSTED_TYPES: list[str] = []


def load_skops(payload: bytes):
    """The model in a skops ``payload``; ``ValueError`` if it holds a type not trusted here."""
    import skops.io

    untrusted = [name for name in skops.io.get_untrusted_types(data=payload)
                 if name not in TRUSTED_TYPES]
    if untrusted:
        raise ValueError(f"the artifact holds types this code does not trust: {', '.join(untrusted)}")
    return skops.io.loads(payload, trusted=TRUSTED_TYPES)
