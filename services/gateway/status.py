"""Pure: an event's status document from its plan and the outcomes heard so far."""

from typing import Any


def event_status(plan: tuple[str, dict[str, Any]] | None, counts: dict[tuple[str, str, str], int]) -> dict[str, Any]:
    """accepted (not planned yet) / embargoed / delivering / delivered, with per group and channel counts."""
    if plan is None:
        return {"status": "accepted", "groups": {}, "totals": _totals({})}
    status, body = plan
    groups: dict[str, dict[str, dict[str, int]]] = {}
    for aid, channels in body.get("targeted", {}).items():
        for channel, targeted in channels.items():
            groups.setdefault(aid, {})[channel] = {
                "targeted": targeted,
                "sent": counts.get((aid, channel, "sent"), 0),
                "failed": counts.get((aid, channel, "failed"), 0),
            }
    if status == "embargoed":
        state = "embargoed"
    else:
        done = all(c["sent"] + c["failed"] >= c["targeted"] for ch in groups.values() for c in ch.values())
        state = "delivered" if done else "delivering"
    return {"status": state, "groups": groups, "totals": _totals(groups)}


def _totals(groups: dict[str, dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {}
    for channels in groups.values():
        for channel, c in channels.items():
            t = totals.setdefault(channel, {"targeted": 0, "sent": 0, "failed": 0})
            for k in t:
                t[k] += c[k]
    return totals
