"""The feature registry."""

from __future__ import annotations

from fastapi import APIRouter

from timetravel.api.deps import ReaderDep, ServicesDep
from timetravel.api.models import FeatureOut
from timetravel.api.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1/features", tags=["features"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=list[FeatureOut])
def list_features(
    services: ServicesDep,
    _: ReaderDep,
    source: str | None = None,
    owner: str | None = None,
    tag: str | None = None,
) -> list[FeatureOut]:
    """Current features (filter by the source they read, owner or tag)."""
    return [FeatureOut(**f) for f in services.tt.features(source=source, owner=owner, tag=tag)]


@router.get("/{name}", response_model=FeatureOut)
def get_feature(name: str, services: ServicesDep, _: ReaderDep) -> FeatureOut:
    """One feature, with every registered version."""
    from timetravel.api.problems import Problem
    from timetravel.errors import FeatureError

    try:
        return FeatureOut(**services.tt.feature(name))
    except FeatureError as exc:
        raise Problem(404, "Not found", str(exc)) from None
