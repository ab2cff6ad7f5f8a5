import pandas as pd
import pytest

from app.data.generator import generate
from app.data.lake import BatchNotFound, check_batch_id


def test_write_then_read_round_trips_a_batch(lake):
    records = generate(100, seed=1, batch_id="b1")
    lake.write("raw", "b1", records)
    assert lake.exists("raw", "b1") and not lake.exists("normalized", "b1")
    back = lake.read("raw", "b1")
    # The generator's categorical text comes back as plain text, the form the checks want.
    text = {name: "str" for name, dtype in records.dtypes.items() if dtype == "category"}
    assert text and all(back[name].dtype == "str" for name in text)
    pd.testing.assert_frame_equal(back, records.astype(text))


def test_write_leaves_no_temporary_files(local_home):
    local_home.lake.write("raw", "b1", generate(10, seed=1, batch_id="b1"))
    folder = local_home.storage.local_path("data/raw")
    assert [p.name for p in folder.iterdir()] == ["b1.parquet"]


def test_reading_a_missing_batch_says_which(lake):
    with pytest.raises(BatchNotFound, match="batch nope has no normalized data"):
        lake.read("normalized", "nope")


def test_delete_removes_every_stage(lake):
    for stage in ("raw", "normalized", "holdout"):
        lake.write(stage, "b1", generate(10, seed=1, batch_id="b1"))
    lake.delete("b1")
    assert not any(lake.exists(stage, "b1") for stage in ("raw", "normalized", "holdout"))


@pytest.mark.parametrize("bad", ["../etc/passwd", "", "a/b", ".hidden", 7, None, "x" * 200])
def test_batch_ids_that_could_escape_the_lake_are_refused(bad):
    with pytest.raises(ValueError, match="invalid batch id"):
        check_batch_id(bad)


def test_records_keep_every_json_value_exactly(lake):
    """Mixed columns, NaN and Infinity (which plain orjson would turn into null), objects."""
    import math

    sent = [{"idade": 35, "salario": float("nan"), "x": {"a": [1, "b"]}},
            {"idade": "35", "salario": float("inf"), "nome": None},
            {"idade": True, "salario": 10**20}]
    lake.write_records("raw", "mixed", sent)
    back = lake.read_records("raw", "mixed")
    assert [type(v) for v in back["idade"]] == [int, str, bool]
    assert math.isnan(back.loc[0, "salario"]) and back.loc[1, "salario"] == math.inf
    assert back.loc[2, "salario"] == 10**20
    assert back.loc[0, "x"] == {"a": [1, "b"]} and back.loc[2, "x"] is None
