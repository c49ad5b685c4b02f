"""Writes 01_researcher_walkthrough.ipynb from these cells (edit here, then run it; outputs are not
committed: the test suite executes the notebook)."""

import nbformat as nbf

cells = []


def md(text: str) -> None:
    cells.append(nbf.v4.new_markdown_cell(text.strip()))


def code(text: str) -> None:
    cells.append(nbf.v4.new_code_cell(text.strip()))


md("""
# Researcher walkthrough: leakage-free training data with `timetravel`

The question: **will a member play a title of a given genre in the next 7 days?**

We will

1. run a few weekly snapshot runs against the demo streaming service (select a stratified
   sample of members, snapshot what the services know about them into Delta);
2. label members at past instants from what they actually did afterwards;
3. build the training set **as of** each label time (`tt.training_set`) and, for contrast, the
   naive way: join each label with the member's *latest* snapshot;
4. train the same scikit-learn model on both and compare the offline metric with the metric on
   a later period — the naive model looks great offline and then disappoints: leakage.

The naive join here is the common mistake: labels are known a week after their label time,
and the researcher joins them with the features *as they are when the label is known* (the
latest snapshot then), which already contain the plays the label is about.

Sizes are small so this runs in a couple of minutes (it is executed by `make test`);
set `TT_NOTEBOOK_MEMBERS` / `TT_NOTEBOOK_RUNS` for a bigger run.
""")
code("""
import os
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from timetravel.config import Allocation, Panel, SelectionSettings, load_config
from timetravel.collect.selection import select_contexts
from timetravel.demo.fleet import Fleet
from timetravel.demo.population import write_population
from timetravel.demo.world import GENRES, World
from timetravel import TimeTravel
from timetravel.collect.snapshot import snapshot_facts
from timetravel.times import to_utc

ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "pyproject.toml").exists())
MEMBERS = int(os.environ.get("TT_NOTEBOOK_MEMBERS", "1200"))
RUNS = int(os.environ.get("TT_NOTEBOOK_RUNS", "4"))
SAMPLE = int(os.environ.get("TT_NOTEBOOK_SAMPLE", "250"))
GENRE = "comedy"
WORK = Path(os.environ.get("TT_NOTEBOOK_DIR") or tempfile.mkdtemp(prefix="tt-notebook-"))
FIRST_RUN = to_utc("2026-03-02T06:00:00Z")
RUN_TIMES = [FIRST_RUN + timedelta(days=7 * i) for i in range(RUNS)]
print(f"{MEMBERS} members, {RUNS} weekly runs of {SAMPLE} contexts, working in {WORK}")
""")
md("""
## 1. Weekly snapshot runs

The local profile, pointed at a scratch warehouse. Each run: the fleet's clock moves to the run
time, the population is exported, a stratified sample is selected (half kept from the previous
run: a panel), and all four services are snapshotted into versioned Delta tables.
""")
code("""
base = load_config(ROOT / "conf" / "local.yaml")
world_args = base.demo.world_args() | {"members": MEMBERS}
fleet = Fleet.up(WORK / "fleet", world=world_args, clock_at=RUN_TIMES[0].isoformat())
config = base.model_copy(update={
    "warehouse": base.warehouse.model_copy(update={"root": str(WORK / "warehouse")}),
    "spark": base.spark.model_copy(update={"master": "local[2]", "shuffle_partitions": 2,
                                           "jars_dir": str(ROOT / ".cache" / "jars")}),
    "selection": base.selection.model_copy(update={
        "allocation": Allocation(sample_size=SAMPLE, min_per_stratum=2),
        "panel": Panel(fraction=0.8)}),
    "snapshot": base.snapshot.model_copy(
        update={"fleet_file": str(fleet.state_dir / "fleet.json")}),
})
tt = TimeTravel(config)
tt.spark.sparkContext.setLogLevel("ERROR")
world = World(**world_args)
for at in RUN_TIMES:
    fleet.clock.set(at)
    write_population(tt.store, world, at)
    selected = select_contexts(tt.store, config.selection, at)
    snap = snapshot_facts(tt.store, config, selected.run_id)
    print(f"{selected.run_id}: {selected.sample_size} contexts, snapshot {snap.status}")
fleet.down()
""")
code("""
pd.DataFrame([{"run": r.run_id, "time": r.run_time, **{s: v.status for s, v in r.stages.items()}}
              for r in tt.runs()])
""")
md("""
## 2. Labels

The model scores members shortly after each weekly run: a member sampled in a run (and kept
by the panel in the next) gets a label time within a day after it, and the label is whether
they actually started a *comedy* in the 7 days after that (from the demo world's event log:
in real life, from your playback logs). The first runs give the **training period**, the last
one the **later period**.
""")
code("""
rng = np.random.default_rng(0)
genre_index = GENRES.index(GENRE)
contexts = tt.store.read("context_sets").select("run_id", "member_id").toPandas()
members_of = contexts.groupby("run_id")["member_id"].apply(set).to_dict()
runs = sorted(tt.runs(), key=lambda r: r.run_time)
rows = []
for index, (run, following) in enumerate(zip(runs, runs[1:])):
    # Scored within a day after a weekly run; the label matures by the following run.
    for member in sorted(members_of[run.run_id] & members_of[following.run_id]):
        t = run.run_time + timedelta(seconds=int(rng.integers(0, 86400)))
        events = world.events(int(member))
        ts = int(t.timestamp())
        window = (events.play_start > ts) & (events.play_start <= ts + 7 * 86400)
        label = bool((world.title_genre[events.play_title[window]] == genre_index).any())
        rows.append({"member_id": int(member), "label_time": t, "label": label,
                     "period": "train" if index < len(runs) // 2 else "later"})
labels = pd.DataFrame(rows)
labels.groupby("period")["label"].agg(["count", "mean"])
""")
md("""
## 3. Features as of each label time, and the naive way

`tt.training_set` joins every label row with each source's latest snapshot **at or before** its
label time (never a fact from the future) and runs the feature encoders with windows relative
to the label time. The naive approach takes the member's latest snapshot at the moment the
label became known (one week later) and computes the features there.
""")
code("""
FEATURES = ["plays_7d", "plays_28d", "hours_watched_28d", "days_since_last_play",
            f"genre_share_28d_{GENRE}", "my_list_size", "my_list_added_7d", "thumbs_up_share",
            "tenure_days", "lifetime_plays"]
as_of = tt.training_set(labels, features=FEATURES, max_staleness=timedelta(days=14))
print(f"{as_of.manifest.rows} rows on {as_of.engine}; coverage:",
      {k: round(v, 2) for k, v in as_of.manifest.coverage.items()})
known = labels.assign(label_time=labels["label_time"] + timedelta(days=7))
naive = tt.training_set(known, features=FEATURES).to_pandas()
as_of_frame = as_of.to_pandas()
assert len(as_of_frame) == len(labels)   # every label row exactly once
shown = ["member_id", "label_time", "label", *FEATURES[:5], "viewing_history__snapshot_time"]
as_of_frame[shown].head()
""")
md("""
## 4. Same model, two feature sets

Offline metric: AUC on a held-out quarter of the training period, with each approach's own
features. Later-period metric: the deployed model scores the later period with the features
serving would have had at prediction time — which are the as-of ones.
""")
code("""
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

def matrix(frame):
    x = frame[FEATURES].astype(float).copy()
    x["days_since_last_play"] = x["days_since_last_play"].fillna(365.0)
    return x.fillna(0.0).to_numpy()

def evaluate(train_frame, name):
    period = train_frame["period"] == "train"
    x, y = matrix(train_frame[period]), train_frame.loc[period, "label"].to_numpy()
    x_fit, x_hold, y_fit, y_hold = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_fit, y_fit)
    later = as_of_frame["period"] == "later"
    return {"features": name,
            "offline AUC": roc_auc_score(y_hold, model.predict_proba(x_hold)[:, 1]),
            "later-period AUC": roc_auc_score(
                as_of_frame.loc[later, "label"],
                model.predict_proba(matrix(as_of_frame[later]))[:, 1])}

results = pd.DataFrame([evaluate(as_of_frame, "as of label time"),
                        evaluate(naive, "latest snapshot (naive)")]).set_index("features")
results["gap"] = results["offline AUC"] - results["later-period AUC"]
results.round(3)
""")
code("""
import matplotlib.pyplot as plt

ax = results[["offline AUC", "later-period AUC"]].plot.bar(rot=0, figsize=(7, 3.5), ylim=(0.4, 1.0))
ax.set_title(f"Will the member play a {GENRE} in the next 7 days?")
ax.axhline(0.5, color="grey", lw=0.8, ls="--")
plt.tight_layout()
plt.show()
""")
md("""
The naive model's offline number is inflated: its features were computed from snapshots taken
*after* the label time, so they already contain the plays the label asks about. On the later
period it can only use what serving knows, and the gap shows. The as-of model's offline metric
is an honest estimate of what it will do.
""")
code("""
naive, honest = results.loc["latest snapshot (naive)"], results.loc["as of label time"]
naive_gap, as_of_gap = naive["gap"], honest["gap"]
print(f"offline-vs-later gap: naive {naive_gap:+.3f}, as-of {as_of_gap:+.3f}")
assert naive["offline AUC"] > honest["offline AUC"]
assert naive_gap > as_of_gap
""")
md("""
## 5. Reproducible: the manifest pins every Delta version

Writing the training set stores its manifest (fact tables with their Delta versions, encoder
versions, a fingerprint of the labels). `tt.rebuild` reproduces it bit for bit, whatever runs,
backfills or deletes happen later.
""")
code("""
manifest = as_of.write(str(WORK / "training_sets" / "comedy_7d"))
print({s: f"{p.table}@v{p.version}" for s, p in manifest.sources.items()})
rebuilt = tt.rebuild(WORK / "training_sets" / "comedy_7d").to_pandas()
pd.testing.assert_frame_equal(rebuilt, as_of_frame)
print("rebuilt identically:", len(rebuilt), "rows")
""")
for index, cell in enumerate(cells):  # stable ids: regenerating does not rewrite every cell
    cell.id = f"cell-{index:02d}"
nb = nbf.v4.new_notebook(
    cells=cells,
    metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
)
nbf.write(
    nb, str(__import__("pathlib").Path(__file__).with_name("01_researcher_walkthrough.ipynb"))
)
