"""The manifest of a training set: everything needed to rebuild it bit for bit.

It pins every fact table read to its Delta version (transaction time), names every encoder
with its version, fingerprints the label set and records the staleness bounds, the config
hash and the resulting row count and per-feature coverage.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from timetravel.config import Config
from timetravel.errors import ManifestError

__all__ = ["Manifest", "SourcePin", "FeatureRef", "LabelInfo", "config_hash", "FORMAT"]

FORMAT = "timetravel.training.plan-set/1"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourcePin(_Model):
    """One fact table read, and the Delta version it was read at."""

    table: str
    version: int = Field(ge=0)


class FeatureRef(_Model):
    name: str
    version: int = Field(ge=1)
    output: str


class LabelInfo(_Model):
    fingerprint: str
    rows: int = Field(ge=0)
    columns: list[str]
    uri: str | None = Field(default=None, description="where a copy of the labels was written")


class Manifest(_Model):
    """What a training set was built from; :meth:`TimeTravel.rebuild` reads it back."""

    format: str = FORMAT
    id: str
    created_at: str
    engine: str
    entity: list[str]
    label_time: str
    features: list[FeatureRef]
    sources: dict[str, SourcePin]
    max_staleness_s: dict[str, float | None]
    labels: LabelInfo
    config_hash: str
    rows: int = Field(ge=0)
    coverage: dict[str, float]
    output_uri: str | None = None
    output_format: str | None = None
    timetravel_version: str

    def staleness(self) -> dict[str, timedelta | None]:
        return {
            s: None if v is None else timedelta(seconds=v) for s, v in self.max_staleness_s.items()
        }

    def to_json(self) -> str:
        return json.dumps(self.model_dump(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes | dict[str, Any]) -> Manifest:
        """Parse and validate a manifest; a clear :class:`ManifestError` if it is not one."""
        try:
            raw = text if isinstance(text, dict) else json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"manifest is not JSON: {exc}") from None
        if isinstance(raw, dict) and raw.get("format") not in (None, FORMAT):
            raise ManifestError(
                f"unsupported manifest format {raw.get('format')!r}; this version reads {FORMAT!r}"
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()
            )
            raise ManifestError(f"invalid manifest: {problems}") from None


def config_hash(config: Config) -> str:
    """A short, stable hash of the whole profile (recorded, not enforced, on rebuild)."""
    text = json.dumps(config.model_dump(mode="json", by_alias=True), sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def training_set_id(
    features: list[FeatureRef],
    sources: dict[str, SourcePin],
    staleness: dict[str, float | None],
    fingerprint: str,
) -> str:
    """The same inputs always give the same id."""
    text = json.dumps(
        {
            "f": [f.model_dump() for f in features],
            "s": {k: v.model_dump() for k, v in sources.items()},
            "m": staleness,
            "l": fingerprint,
        },
        sort_keys=True,
    )
    return "ts-" + hashlib.sha256(text.encode()).hexdigest()[:12]
