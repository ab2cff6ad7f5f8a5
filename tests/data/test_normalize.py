from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.data.generator import generate
from app.dataset import builtin
from app.data.normalize import normalize, tidy_category


def raw_batch(n=50, batch_id="b"):
    """A generated batch as a remote producer would send it: plain strings and objects."""
    records = generate(n, seed=5, batch_id=batch_id)
    records["timestamp"] = records["timestamp"].map(lambda t: t.isoformat())
    return records.astype(object)


def test_clean_batch_passes_whole_with_proper_types():
    result = normalize(raw_batch(), "b")
    assert result.counts == {"clean": 50, "quarantined": 0}
    assert list(result.clean.columns) == list(builtin().columns)
    assert result.clean["idade"].dtype == np.int64
    assert result.clean["salario"].dtype == np.float64
    assert str(result.clean["timestamp"].dtype) == "datetime64[ms, UTC]"


# One case per check of the schema (app/data/schema.py), with the exact reason it gives.
@pytest.mark.parametrize("field, value, reason", [
    ("idade", 17, "idade out of range 18-70"),
    ("idade", 71, "idade out of range 18-70"),
    ("idade", 30.5, "idade is not a whole number"),
    ("idade", "trinta", "idade is not a number"),
    ("idade", "35", "idade is not a number"),
    ("idade", True, "idade is not a number"),
    ("idade", None, "missing idade"),
    ("salario", -10.0, "salario out of range 0.01-1,000,000"),
    ("salario", 0.0, "salario out of range 0.01-1,000,000"),
    ("salario", 5e7, "salario out of range 0.01-1,000,000"),
    ("salario", float("inf"), "salario is not a finite number"),
    ("salario", "mil", "salario is not a finite number"),
    ("salario", float("nan"), "missing salario"),
    ("cidade", "   ", "cidade is blank"),
    ("cidade", None, "missing cidade"),
    ("cidade", "x" * 101, "cidade longer than 100 characters"),
    ("cargo", 12, "cargo is not text"),
    ("cargo", {"a": 1}, "cargo is not text"),
    ("nome", 7, "nome is not text"),
    ("nome", "y" * 101, "nome longer than 100 characters"),
    ("timestamp", "yesterday", "timestamp is not ISO 8601"),
    ("geracao_id", "other-batch", "geracao_id is not this batch (b)"),
])
def test_bad_value_is_quarantined_with_its_reason(field, value, reason):
    raw = raw_batch()
    raw.at[3, field] = value
    result = normalize(raw, "b")
    assert result.counts == {"clean": 49, "quarantined": 1}
    [row] = result.quarantine.to_dict("records")
    assert row["row"] == 3
    assert row["reason"] == reason


def test_text_is_trimmed_and_its_length_counted_once_trimmed():
    raw = raw_batch(3)
    raw.at[0, "cidade"] = "  " + "x" * 100 + "  "
    raw.at[1, "nome"] = "  Ana  Souza "
    clean = normalize(raw, "b").clean
    assert len(clean) == 3
    assert clean.loc[0, "cidade"] == "X" + "x" * 99 and clean.loc[1, "nome"] == "Ana  Souza"


def test_the_checks_trim_each_text_column_once(monkeypatch):
    """The blank and the too-long checks of a column share one trimming (a tenth of a
    batch's checking), and each column gets its own lengths, not its neighbour's."""
    from app.data import schema

    trimmed_columns = []
    trim = schema.trimmed
    monkeypatch.setattr(schema, "trimmed", lambda column: trimmed_columns.append(column.name)
                        or trim(column))
    raw = raw_batch(4).astype({"nome": "str", "cidade": "str", "cargo": "str"})
    raw.at[1, "cidade"] = "   "
    raw.at[2, "cargo"] = "y" * 101
    verdict = schema.check(raw, builtin(), "b")
    assert sorted(trimmed_columns) == ["cargo", "cidade", "nome"]
    assert verdict.reasons == {1: ["cidade is blank"], 2: ["cargo longer than 100 characters"]}


def test_optional_fields_may_be_absent_or_null():
    raw = raw_batch(4).drop(columns=["timestamp", "geracao_id"])
    raw.at[0, "nome"] = None
    result = normalize(raw, "b", received_at="2026-01-02T03:04:05+00:00")
    assert result.counts == {"clean": 4, "quarantined": 0}
    assert pd.isna(result.clean.loc[0, "nome"])
    assert (result.clean["geracao_id"] == "b").all()
    assert (result.clean["timestamp"] == pd.Timestamp("2026-01-02T03:04:05Z")).all()


def test_unknown_fields_are_reported_not_kept_and_quarantine_nothing():
    raw = raw_batch(5)
    raw["bonus"] = 1
    raw["departamento"] = "TI"
    result = normalize(raw, "b")
    assert result.counts == {"clean": 5, "quarantined": 0}
    assert result.unknown_fields == ["bonus", "departamento"]
    assert list(result.clean.columns) == list(builtin().columns)


def test_whole_floats_count_as_ages():
    raw = raw_batch(2)
    raw["idade"] = [35.0, 40]
    assert normalize(raw, "b").clean["idade"].tolist() == [35, 40]


def test_every_row_lands_in_exactly_one_output_with_all_its_reasons():
    raw = raw_batch(20)
    raw.at[0, "idade"] = 5
    raw.at[0, "salario"] = -1.0
    raw.loc[1] = raw.loc[2]
    result = normalize(raw, "b")
    assert len(result.clean) + len(result.quarantine) == len(raw)
    reasons = dict(zip(result.quarantine["row"], result.quarantine["reason"]))
    assert "idade out of range" in reasons[0] and "salario out of range" in reasons[0]
    assert reasons[2] == "duplicate of an earlier row"


def test_missing_column_quarantines_every_row():
    result = normalize(raw_batch(5).drop(columns=["cargo"]), "b")
    assert result.counts == {"clean": 0, "quarantined": 5}
    assert set(result.quarantine["reason"]) == {"missing column cargo"}


def test_categories_are_tidied_with_accents_kept():
    raw = raw_batch(3)
    raw["cidade"] = ["  são   PAULO ", "rio de janeiro", "Sao Paulo"]
    raw["cargo"] = ["técnico DE enfermagem", "MÉDICO", "professor "]
    clean = normalize(raw, "b").clean
    assert clean["cidade"].tolist() == ["São Paulo", "Rio de Janeiro", "Sao Paulo"]
    assert clean["cargo"].tolist() == ["Técnico de Enfermagem", "Médico", "Professor"]


def test_tidy_category_is_idempotent_on_the_catalogue():
    from app.data.generator import CARGOS, CIDADES

    for name in [*CARGOS, *CIDADES]:
        assert tidy_category(name) == name


def test_quarantine_keeps_the_original_values_readable():
    raw = raw_batch(4)
    raw.at[2, "idade"] = "trinta"
    quarantine = normalize(raw, "b").quarantine
    assert quarantine.loc[0, "idade"] == "trinta"
    assert isinstance(quarantine, pd.DataFrame) and "reason" in quarantine


# -- any declared dataset: real wages (AER's CPS1985), as a CSV file gives them -------------

def wages_text(rows: int = 6) -> pd.DataFrame:
    """Rows of examples/cps1985.toml's dataset as read from CSV: every value text."""
    from examples.cps1985 import cps1985

    return cps1985().head(rows).astype(str)


@pytest.fixture(scope="module")
def wages():
    from app.dataset import load

    return load(Path(__file__).resolve().parents[2] / "examples" / "cps1985.toml")


@pytest.mark.parametrize("column, value, reason", [
    ("wage", "500.5", "wage out of range 0-100"),
    ("wage", "-1", "wage out of range 0-100"),
    ("wage", "lots", "wage is not a finite number"),
    ("education", "twelve", "education is not a number"),
    ("education", "12.5", "education is not a whole number"),
    ("experience", "61", "experience out of range 0-60"),
    ("region", "   ", "region is blank"),
    ("gender", None, "missing gender"),
    # R writes a missing number as NA, Excel as #N/A: missing, not a word where a number belongs.
    ("wage", "NA", "missing wage"),
    ("education", "#N/A", "missing education"),
])
def test_each_bad_value_of_a_declared_dataset_has_its_reason_and_no_good_row_is_lost(
        wages, column, value, reason):
    from app.data.files import numbers_from_text

    raw = wages_text()
    raw.loc[2, column] = value
    result = normalize(numbers_from_text(raw, wages), "w1", received_at="2025-01-01T00:00:00Z",
                       dataset=wages)
    assert result.counts == {"clean": 5, "quarantined": 1}
    assert result.quarantine.loc[0, "reason"] == reason
    assert result.quarantine.loc[0, "row"] == 2


def test_a_batch_without_the_target_column_quarantines_every_row_with_the_reason(wages):
    from app.data.files import numbers_from_text

    raw = wages_text().drop(columns=["wage"])
    result = normalize(numbers_from_text(raw, wages), "w1", dataset=wages)
    assert result.counts == {"clean": 0, "quarantined": 6}
    assert set(result.quarantine["reason"]) == {"missing column wage"}


def test_equal_rows_without_timestamps_are_two_observations(wages):
    """Real data repeats itself: two people of the same age, schooling and wage are both
    learnt. Only a row repeated with its own timestamp is one event sent twice."""
    from app.data.files import numbers_from_text

    raw = wages_text(3)
    raw.loc[1] = raw.loc[0]
    result = normalize(numbers_from_text(raw, wages), "w1", received_at="2025-01-01T00:00:00Z",
                       dataset=wages)
    assert result.counts == {"clean": 3, "quarantined": 0}
    assert list(result.clean.columns) == list(wages.columns)

