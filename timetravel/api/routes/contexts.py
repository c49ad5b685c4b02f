"""Point lookups: one context's feature vector as of an instant."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Query

from timetravel.api.deps import ReaderDep, ServicesDep
from timetravel.api.models import LookupOut
from timetravel.api.problems import PROBLEM_RESPONSES, Problem
from timetravel.times import check_instant
from timetravel.training.job import parse_staleness

router = APIRouter(prefix="/v1/contexts", tags=["contexts"], responses=PROBLEM_RESPONSES)


@router.get("/{key}/features", response_model=LookupOut)
async def context_features(
    services: ServicesDep,
    _: ReaderDep,
    key: Annotated[int, Path(ge=0, le=2**63 - 1, description="the context's entity key")],
    as_of: Annotated[
        str, Query(max_length=64, description="ISO-8601 instant; without an offset it is UTC")
    ],
    features: Annotated[
        str | None, Query(max_length=8192, description="comma-separated names")
    ] = None,
    max_staleness: Annotated[
        str | None,
        Query(
            max_length=1024,
            description="'14d' for every source, or per source: 'ratings=7d,my-list=1d'",
        ),
    ] = None,
) -> LookupOut:
    """The feature values the context had as of ``as_of``, with the snapshot time and run
    each source's values came from (nulls when no usable snapshot exists)."""
    try:
        instant = check_instant(as_of)
    except ValueError as exc:
        raise Problem(422, "Invalid instant", str(exc)) from None
    names = [n.strip() for n in features.split(",") if n.strip()] if features else None
    if features is not None and not names:
        raise Problem(422, "Invalid input", "features is empty; omit it for every feature")
    bound = parse_staleness(max_staleness, what="max_staleness")
    lookup = partial(services.tt.lookup, key, instant, features=names, max_staleness=bound)
    with services.metrics.lookup_seconds.time():
        result = await asyncio.get_running_loop().run_in_executor(services.lookups, lookup)
    return LookupOut(**result)
