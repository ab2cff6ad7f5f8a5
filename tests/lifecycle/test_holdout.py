"""The gate's held-out pool: the newest held-out rows of the lineage's recent batches."""

import pandas as pd

from app.lifecycle.holdout import HoldoutPool


def held_out(home, batch_id: str, rows: pd.DataFrame) -> None:
    home.lake.write("holdout", batch_id, rows)


def test_the_pool_is_the_newest_rows_of_its_batches_whatever_each_batch_holds(home):
    # Each batch has its own categories, and a number whole in one and not in the next:
    # the pool must read them as one frame, as pandas would have joined them.
    held_out(home, "a", pd.DataFrame({"idade": [30, 40], "cidade": pd.Categorical(["Recife", "Natal"]),
                                      "cargo": ["Professor", "Médico"], "salario": [3000.0, 9000.0]}))
    held_out(home, "b", pd.DataFrame({"idade": [50.5], "cidade": pd.Categorical(["Manaus"]),
                                      "cargo": ["Vendedor"], "salario": [2500.0]}))
    pool = HoldoutPool(home)

    rows = pool.pool(["a", "b", "never-held-out"])
    assert rows["idade"].tolist() == [30.0, 40.0, 50.5]
    assert rows["cidade"].astype(str).tolist() == ["Recife", "Natal", "Manaus"]
    assert rows["cargo"].astype(str).tolist() == ["Professor", "Médico", "Vendedor"]
    assert rows["salario"].tolist() == [3000.0, 9000.0, 2500.0]

    newest = pool.pool(["a", "b"], limit=2)
    assert newest["cidade"].astype(str).tolist() == ["Natal", "Manaus"]
    assert newest.index.tolist() == [0, 1]
    assert pool.pool([]).empty
