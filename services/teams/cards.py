"""Keeping an Adaptive Card within what Teams takes: card version at most 1.5, the post under 28 KB.

A card that is too large has its longest text blocks cut at a word, pointing to the card's "Läs mer" link.
"""

import json
from typing import Any

MAX_POST_BYTES = 28 * 1024
MAX_VERSION = (1, 5)
CUT_NOTE = " … (Läs mer via länken nedan)"


def post_bytes(card: dict[str, Any]) -> int:
    """The size of the whole post as Teams receives it (the card in its message envelope)."""
    envelope = {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}
    return len(json.dumps(envelope, ensure_ascii=False).encode())


def _version(card: dict[str, Any]) -> str:
    try:
        major, minor = (int(p) for p in str(card.get("version", "1.5")).split(".")[:2])
    except ValueError:
        return "1.5"
    return f"{major}.{minor}" if (major, minor) <= MAX_VERSION else "1.5"


def fit_card(card: dict[str, Any], limit: int = MAX_POST_BYTES) -> dict[str, Any]:
    """The card, at most version 1.5 and (with its longest texts cut if need be) under `limit` bytes."""
    fitted = {**card, "version": _version(card), "body": [dict(b) for b in card.get("body", [])]}
    texts = sorted((b for b in fitted["body"] if b.get("type") == "TextBlock" and isinstance(b.get("text"), str)),
                   key=lambda b: len(b["text"]), reverse=True)
    for block in texts:
        over = post_bytes(fitted) - limit
        if over <= 0:
            break
        text = block["text"]
        keep = max(0, len(text.encode()) - over - len(CUT_NOTE.encode()) - 64)
        cut = text.encode()[:keep].decode(errors="ignore")
        if " " in cut[len(cut) // 2:]:
            cut = cut[: cut.rindex(" ")]
        block["text"] = cut.rstrip() + CUT_NOTE
    if post_bytes(fitted) > limit:
        raise ValueError("card is over the size limit even with its texts cut")
    return fitted
