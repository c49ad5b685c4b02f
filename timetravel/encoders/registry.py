"""The registry of feature encoders: every version stays resolvable, so old manifests rebuild."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from timetravel.encoders.base import Encoder
from timetravel.errors import FeatureError

__all__ = ["Registry"]


class Registry:
    """Encoders by name and version; the highest version of a name is its current one."""

    def __init__(self, encoders: Iterable[Encoder] = ()) -> None:
        self._by_key: dict[tuple[str, int], Encoder] = {}
        for encoder in encoders:
            self.register(encoder)

    def register(self, encoder: Encoder) -> Encoder:
        """Add ``encoder``; a (name, version) can be registered only once."""
        key = (encoder.name, encoder.version)
        if key in self._by_key:
            raise FeatureError(
                f"encoder {encoder.key} is already registered; "
                "bump the version to change what it computes"
            )
        if not encoder.name.isidentifier():
            raise FeatureError(
                f"encoder name {encoder.name!r} must be an identifier "
                "(letters, digits, underscores)"
            )
        self._by_key[key] = encoder
        return encoder

    def names(self) -> list[str]:
        """Every feature name, sorted."""
        return sorted({name for name, _ in self._by_key})

    def versions(self, name: str) -> list[int]:
        """Every registered version of ``name``, ascending (empty if unknown)."""
        return sorted(v for n, v in self._by_key if n == name)

    def get(self, name: str, version: int | None = None) -> Encoder:
        """The encoder ``name`` at ``version`` (the current one if None)."""
        versions = self.versions(name)
        if not versions:
            raise FeatureError(f"unknown feature {name!r}; known: {', '.join(self.names())}")
        if version is None:
            version = versions[-1]
        if (name, version) not in self._by_key:
            raise FeatureError(
                f"feature {name!r} has no version {version}; "
                f"versions: {', '.join(map(str, versions))}"
            )
        return self._by_key[(name, version)]

    def resolve(self, names: Sequence[str] | None) -> list[Encoder]:
        """Current encoders for ``names`` (all current ones if None); every unknown name is
        reported at once."""
        if names is None:
            return [self.get(name) for name in self.names()]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if list(names).count(n) > 1})
            raise FeatureError(f"feature(s) {twice} asked for more than once")
        unknown = [n for n in names if n not in self.names()]
        if unknown:
            raise FeatureError(f"unknown feature(s) {unknown}; known: {', '.join(self.names())}")
        return [self.get(name) for name in names]

    def current(
        self, *, source: str | None = None, owner: str | None = None, tag: str | None = None
    ) -> list[Encoder]:
        """The current version of every feature, filtered by source read, owner or tag."""
        found = [self.get(name) for name in self.names()]
        return [
            e
            for e in found
            if (source is None or source in e.reads)
            and (owner is None or e.owner == owner)
            and (tag is None or tag in e.tags)
        ]
