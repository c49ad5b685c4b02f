"""A non-HTTP fact source used by the tests: answers from a pure function of the key."""

from __future__ import annotations

from typing import Any

from timetravel.config import SourceSettings


class EchoSource:
    """Knows every context: its 'doubled' fact is twice its member id."""

    def __init__(self, settings: SourceSettings) -> None:
        self.settings = settings

    async def fetch(self, keys: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        return [{"doubled": 2 * key["member_id"]} for key in keys]
