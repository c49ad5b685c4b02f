"""Labels from the demo world, and the as-of vs naive comparison ``make demo`` prints.

The label: did the member start a title of ``genre`` within 7 days after the label time
(taken from the world's event log, as a researcher would from playback logs). The naive
training set joins each label with the latest snapshot when the label became known (a week
later): its features already contain the plays the label is about.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from timetravel.demo.world import GENRES, World

if TYPE_CHECKING:
    import pandas as pd

    from timetravel.facade import TimeTravel
    from timetravel.training.dataset import TrainingSet

__all__ = ["genre_labels", "LeakageReport", "compare_with_naive", "DEMO_FEATURES"]

DEMO_FEATURES = [
    "plays_7d",
    "plays_28d",
    "hours_watched_28d",
    "days_since_last_play",
    "genre_share_28d_comedy",
    "my_list_size",
    "thumbs_up_share",
    "tenure_days",
]


def genre_labels(
    world: World,
    members: Mapping[datetime, Sequence[int]],
    *,
    genre: str = "comedy",
    after: timedelta = timedelta(hours=12),
) -> pd.DataFrame:
    """One label per (run time, member): label time ``run time + after``; label = plays
    ``genre`` in the following 7 days."""
    import pandas as pd

    wanted = GENRES.index(genre)
    rows = []
    for run_time, ids in members.items():
        t = run_time + after
        ts = int(t.timestamp())
        for member in ids:
            events = world.events(int(member))
            window = (events.play_start > ts) & (events.play_start <= ts + 7 * 86400)
            rows.append(
                {
                    "member_id": int(member),
                    "label_time": t,
                    "label": bool((world.title_genre[events.play_title[window]] == wanted).any()),
                }
            )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class LeakageReport:
    """As-of vs naive on the same labels."""

    as_of: TrainingSet
    rows: int
    future_rows: int  # naive rows built from a snapshot taken after the label time
    auc_as_of: float
    auc_naive: float

    def lines(self) -> list[str]:
        return [
            f"  naive join: {self.future_rows} of {self.rows} rows use a snapshot taken "
            "after the label time (facts from the future)",
            f"  cross-validated AUC, same model: as-of {self.auc_as_of:.3f}, "
            f"naive {self.auc_naive:.3f} (the naive number is inflated by leakage)",
        ]


def compare_with_naive(
    tt: TimeTravel,
    labels: pd.DataFrame,
    features: Sequence[str] = DEMO_FEATURES,
    *,
    max_staleness: timedelta = timedelta(days=14),
) -> LeakageReport:
    """Build the as-of training set and the naive one; compare what a model makes of each.

    Uses the ``features`` this warehouse can compute (profiles may snapshot fewer sources).
    """
    available = {f["name"] for f in tt.features() if f["available"]}
    features = [f for f in features if f in available]
    as_of = tt.training_set(labels, features=features, max_staleness=max_staleness)
    known = labels.assign(label_time=labels["label_time"] + timedelta(days=7))
    naive = tt.training_set(known, features=features).to_pandas()
    original_time = naive["label_time"] - timedelta(days=7)
    provenance = [c for c in naive.columns if c.endswith("__snapshot_time")]
    future = int((naive[provenance].max(axis=1) > original_time).sum())
    return LeakageReport(
        as_of, len(labels), future, _auc(as_of.to_pandas(), features), _auc(naive, features)
    )


def _auc(frame: pd.DataFrame, features: Sequence[str]) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = frame[list(features)].astype(float)
    if "days_since_last_play" in x:
        x["days_since_last_play"] = x["days_since_last_play"].fillna(365.0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    scores = cross_val_score(
        model, x.fillna(0.0).to_numpy(), frame["label"].to_numpy(), cv=3, scoring="roc_auc"
    )
    return float(np.mean(scores))
