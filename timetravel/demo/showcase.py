"""Human-readable summaries of what the demo services said, and what changed between instants."""

from __future__ import annotations

from typing import Any

__all__ = ["summarize", "describe_change"]


def summarize(service: str, answer: dict[str, Any] | None) -> str:
    """One line per service answer."""
    if answer is None:
        return "unknown member (not joined yet)"
    if service == "viewing-history":
        last = answer["plays"][0] if answer["plays"] else None
        tail = (
            f", last: title {last['title_id']} ({last['genre']}) at {last['started_at']}"
            if last
            else ""
        )
        return f"{answer['total_plays']} plays, {answer['total_minutes'] / 60:.1f} h{tail}"
    if service == "my-list":
        return f"{answer['size']} titles: {[t['title_id'] for t in answer['titles'][:6]]}"
    if service == "ratings":
        return f"{answer['thumbs_up']} up / {answer['thumbs_down']} down"
    return (
        f"{answer['country']} {answer['plan']} on {answer['primary_device']}, "
        f"tenure {answer['tenure_days']} d, {answer['status']}"
    )


def describe_change(
    service: str, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> str:
    """What changed in one service's answer between two instants."""
    if before is None or after is None:
        return "joined in between" if before is None and after is not None else "no answer"
    if service == "viewing-history":
        plays = after["total_plays"] - before["total_plays"]
        hours = (after["total_minutes"] - before["total_minutes"]) / 60
        return f"+{plays} plays, +{hours:.1f} h"
    if service == "my-list":
        old = {t["title_id"] for t in before["titles"]}
        new = {t["title_id"] for t in after["titles"]}
        return f"added {sorted(new - old)}, removed {sorted(old - new)}"
    if service == "ratings":
        return (
            f"thumbs up {before['thumbs_up']} -> {after['thumbs_up']}, "
            f"down {before['thumbs_down']} -> {after['thumbs_down']}"
        )
    changed = [
        f"{k}: {before[k]} -> {after[k]}"
        for k in ("plan", "primary_device", "status")
        if before[k] != after[k]
    ]
    return ", ".join(changed) or f"tenure +{after['tenure_days'] - before['tenure_days']} d"
