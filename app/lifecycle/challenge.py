"""The challenger's contest: a tree model refit on recent batches, against the champion.

Every ``CHALLENGE_EVERY`` batches (by their number in the ledger) the train task sends
``pipeline.challenge``, which runs :func:`contest`:

1. The champion is the lineage head (the linear model the next train step builds on). The
   window is the last ``WINDOW_BATCHES`` batches its lineage learnt, never reaching back past
   an adaptation to drift, so the challenger forgets what the champion forgot.
2. A :class:`~app.models.challenger.ChallengerRegressor` is fit from scratch on the window's
   training rows.
3. Both are scored on the promotion gate's held-out rows (the ``holdout`` share of the same
   recent batches, which neither learnt).
4. The challenger is published as a version of kind ``challenger``, outside the lineage (no
   later version builds on it). Its gate verdict passes, so follow mode serves it, only if the
   champion is worse *beyond chance* (the gate's paired test, with no tolerance): on a tie the
   champion stays. The next champion version faces the served challenger at the gate like any
   served version.

Its metadata's ``contest`` holds both scores, which ``/models`` shows.
"""

from __future__ import annotations

import pandas as pd
from loguru import logger

from app.data.lake import BatchNotFound
from app.lifecycle import gate
from app.models.challenger import ChallengerRegressor
from app.dataset import figure
from app.models.metrics import regression_metrics
from app.models.registry import VersionTaken
from app.models.versions import CHALLENGER, VersionInfo

CHALLENGE_EVERY = 10
WINDOW_BATCHES = 10
# Trees fit on this many of the window's rows at most (a sample the same each time): ten bulk
# batches of 100,000 rows would hold a worker process for 11 s, beside the train steps, for a
# contest that 100,000 rows decide as well.
MAX_CHALLENGER_ROWS = 100_000
# ``/models`` looks this far below the newest version for the latest contest.
CONTEST_LOOKBACK = 5 * CHALLENGE_EVERY


def due(seqs: list[int]) -> bool:
    """Whether a train step that learnt batches numbered ``seqs`` should start a contest."""
    return any(seq % CHALLENGE_EVERY == 0 for seq in seqs)


def contest(learner) -> VersionInfo | None:
    """Fit, score and publish a challenger; its metadata, or None when there is nothing to fit.

    ``learner`` is the :class:`~app.lifecycle.learning.Learner` of the home (its caches and
    its view of the lineage are the train step's own).
    """
    home, lineage = learner.home, learner.lineage
    head = lineage.head(home.registry.latest_version() or 0)
    if head is None:
        return None
    window = lineage.recent_batches(head)[-WINDOW_BATCHES:]
    frames = []
    for batch_id in window:
        try:
            frames.append(home.lake.read("normalized", batch_id,
                                         columns=home.dataset.learnt_columns))
        except BatchNotFound:
            continue  # forgotten meanwhile, or its rows already dropped by retention
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(rows) < 2:
        return None
    if len(rows) > MAX_CHALLENGER_ROWS:
        rows = rows.sample(n=MAX_CHALLENGER_ROWS, random_state=0, ignore_index=True)
    target = home.dataset.target
    challenger = ChallengerRegressor(learner.design).fit(rows, rows[target])
    while True:
        newest = home.registry.latest_version() or 0
        champion = lineage.head(newest)
        if _contested(home.registry, window, champion.version):
            # Two steps in a row may each find a contest due: the second has nothing to add.
            logger.info("challenger: the contest of this window and champion {} was held "
                        "already", champion.version)
            return None
        verdict, scores = judge(challenger, champion, learner.holdout.pool(
            lineage.recent_batches(champion)), target, lineage.served())
        try:
            info = home.registry.publish(
                challenger, newest + 1, kind=CHALLENGER, batch_id=window[-1],
                window_batch_ids=window, parent_version=champion.version, lineage=False,
                window_start_seq=champion.metadata.window_start_seq,
                metrics={"prequential": None, "holdout": scores["challenger"]},
                contest=scores, gate=verdict)
            break
        except VersionTaken:
            continue  # a train step published meanwhile: judge against its champion
    home.notify("version", info.version)
    if verdict["passed"] and home.serving.state().version == info.version:  # not if pinned
        # What is served changes kind (trees for the linear model): the trail says why.
        home.audit.record("challenger_served", reason=verdict["reason"],
                          from_version=verdict["served_version"], to_version=info.version)
    logger.info("challenger version {} (trees on {:,} rows of {} batches): {}",
                info.version, len(rows), len(window), verdict["reason"])
    return info


def _newest_challenger(registry) -> VersionInfo | None:
    return next((info for _, info in zip(range(CONTEST_LOOKBACK), registry.newest_first())
                 if info.kind == CHALLENGER), None)


def _contested(registry, window: list[str], champion: int) -> bool:
    """Whether the newest challenger was fit on ``window`` against ``champion`` already."""
    info = _newest_challenger(registry)
    return info is not None and info.window_batch_ids == window and info.parent_version == champion


def latest_contest(registry) -> dict | None:
    """The newest challenger's contest: both versions and scores, and which won; or None."""
    info = _newest_challenger(registry)
    if info is None or not info.contest:
        return None
    return {"challenger_version": info.version, "at": info.created_at,
            "window_batches": len(info.window_batch_ids or []), **info.contest}


def judge(challenger, champion, pool: pd.DataFrame, target: str, served) -> tuple[dict, dict]:
    """The challenger's gate verdict, and both models' scores on ``pool``."""
    verdict = {"passed": False, "batch_hurt": False, "tolerance": 0.0,
               "holdout_rows": int(len(pool)), "parent_version": champion.version,
               "served_version": served.version if served else None}
    scores = {"champion_version": champion.version, "champion": None, "challenger": None,
              "winner": "champion"}
    if pool.empty:
        verdict["reason"] = "no held-out rows yet to compare on: the champion stays"
        return verdict, scores
    truth = pool[target].to_numpy(dtype=float)
    mine = gate.predictions(challenger, pool)
    theirs = gate.predictions(champion.model, pool)
    scores.update(champion=regression_metrics(truth, theirs),
                  challenger=regression_metrics(truth, mine))
    won = gate.worse_beyond_chance(theirs, mine, truth, tolerance=0.0)
    scores["winner"] = "challenger" if won else "champion"
    verdict.update(passed=won, candidate=scores["challenger"], served=scores["champion"])
    verdict["reason"] = (
        f"challenger holdout MSE {figure(scores['challenger']['mse'])} against "
        f"{figure(scores['champion']['mse'])} for the champion, version {champion.version}, on "
        f"{len(pool):,} held-out rows: "
        + ("the challenger is better beyond chance and is served" if won
           else "not better beyond chance, so the champion stays"))
    return verdict, scores
