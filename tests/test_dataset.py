"""A dataset declared in one file: what a good one gives, what a bad one gets, and that the
built-in one is exactly the generator's records."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app import dataset as datasets
from app.data.generator import FIELDS, generate
from app.dataset import DatasetError, builtin, parse
from app.models.regressor import FIRST_FORMAT, IncrementalRidge
from app.models.stats import Design, SufficientStats

ROOT = Path(__file__).resolve().parent.parent
CPS1985 = ROOT / "examples" / "cps1985.toml"

GOOD = '''
name = "wages"
target = "wage"
unit = "USD/hour"
target_min = 0
target_max = 500
[features]
education  = { type = "number", min = 0, max = 20 }
experience = { type = "number", min = -5, max = 70, square = true }
region     = { type = "category" }
'''


def test_the_built_in_declaration_is_the_generators_records():
    declared = builtin()
    assert declared.generated and declared.target == "salario"
    assert set(declared.columns) == set(FIELDS)
    idade = declared.feature("idade")
    assert (idade.kind, idade.min, idade.max, idade.square, idade.whole) == (
        "number", 18, 70, True, True)
    assert [f.name for f in declared.categories] == ["cidade", "cargo"]


def test_a_good_declaration_gives_its_target_features_and_columns():
    declared = parse(GOOD, "wages.toml")
    assert (declared.name, declared.target, declared.unit) == ("wages", "wage", "USD/hour")
    assert declared.learnt_columns == ["education", "experience", "region", "wage"]
    assert not declared.generated
    design = Design.of(declared)
    assert design.term_names() == ["education", "experience", "experience²"]
    assert design.numbers[1].center == 32.5 and design.numbers[1].scale == 37.5


@pytest.mark.parametrize("text, error", [
    ('target = "w"\n[features]\nage = { type = "nummber" }',
     'features.age.type: "nummber" is not number or category'),
    ('target = "w"\n[features]\nage = { type = "number", min = 0 }', "features.age.max: is required"),
    ('target = "w"\n[features]\nage = { type = "number", min = 5, max = 1 }',
     "features.age: min 5 is not below max 1"),
    ('target = "w"', "features: no features declared"),
    ('target = "w"\n[features]\nw = { type = "category" }', "features.w: the target w cannot also be a feature"),
    ('[features]\nage = { type = "category" }', "target: is required"),
    ('target = "w"\ncolour = 1\n[features]\nage = { type = "category" }', "colour: unknown key"),
    ('target = "w"\n[features]\nage = { type = "category", min = 1 }', "features.age.min: unknown key"),
    ('target = "w"\n[features]\nage = { type = "number", min = 0, max = "old" }',
     'features.age.max: "old" is not a finite number'),
    ('target = "w"\n[features]\nage = { type = "number", min = 0, max = 9, square = "yes" }',
     'features.age.square: "yes" is not true or false'),
    ('target = "w"\n[features]\ntimestamp = { type = "category" }', "timestamp: timestamp is a column every batch has"),
    ('target = "w"\nfeatures = [', "not valid TOML"),
])
def test_a_declaration_that_cannot_be_used_names_the_key(text, error):
    with pytest.raises(DatasetError) as raised:
        parse(text, "d.toml")
    message = str(raised.value)
    assert message.startswith("d.toml: ") and error in message and "\n" not in message


def run_app(*args, env=None):
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=env)


def test_the_dataset_command_prints_a_declaration_and_its_model_columns(tmp_path):
    path = tmp_path / "wages.toml"
    path.write_text(GOOD)
    result = run_app("dataset", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "target: wage (USD/hour), 0-500" in out
    assert "experience  number -5 to 70, squared" in out
    assert "experience²: the square of that" in out and "region=<value>" in out
    assert "generator: off" in out


def test_the_dataset_command_refuses_a_bad_declaration_with_status_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('target = "w"\n[features]\nage = { type = "nummber" }\n')
    result = run_app("dataset", str(path))
    assert result.returncode == 2
    assert result.stderr == (f'error: {path}: features.age.type: "nummber" is not number or '
                             "category\n")
    assert result.stdout == ""


def test_a_bad_declaration_stops_make_run_before_anything_starts(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('target = "w"\n[features]\nage = { type = "number", min = 0 }\n')
    env = {key: value for key, value in __import__("os").environ.items()}
    env.update(DATASET=str(path), PIPELINE_HOME=str(tmp_path / "home"))
    result = subprocess.run([sys.executable, "-m", "app.runner"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env=env)
    assert result.returncode == 1
    assert result.stdout.strip() == f"runner | cannot start: {path}: features.age.max: is required"


def test_the_example_declaration_of_real_wages_is_usable():
    declared = datasets.load(CPS1985)
    assert declared.target == "wage" and len(declared.features) == 10


def test_a_model_of_the_first_format_predicts_as_one_of_the_declared_columns():
    """Artifacts written before declarations scaled age by a fixed 10, where the built-in
    declaration scales it by its bounds: the two give the same model, to 1e-9, and statistics
    of both kinds merge exactly."""
    rows = generate(5000, seed=4)
    old = SufficientStats.of(Design.first_format(), rows)
    new = SufficientStats.of(Design.of(builtin()), rows)
    document = {"format": FIRST_FORMAT, "params": {"alpha": 1.0},
                "stats": {key: value for key, value in old.to_document().items()
                          if key != "design"}}
    first = IncrementalRidge.from_document(document)
    declared = IncrementalRidge().set_stats(new)
    test = generate(2000, seed=5)
    assert np.allclose(first.predict(test), declared.predict(test), rtol=1e-9, atol=1e-6)
    merged = IncrementalRidge().set_stats(new + old)
    twice = IncrementalRidge().set_stats(SufficientStats.of(Design.of(builtin()),
                                                           pd.concat([rows, rows])))
    assert np.allclose(merged.predict(test), twice.predict(test), rtol=1e-9, atol=1e-6)


def test_statistics_of_another_dataset_never_join_a_model():
    wages = Design.of(parse(GOOD))
    frame = pd.DataFrame({"education": [10, 12], "experience": [3, 20], "region": ["a", "b"],
                          "wage": [10.0, 20.0]})
    salaries = SufficientStats.of(Design.of(builtin()), generate(50, seed=1))
    with pytest.raises(ValueError, match="cannot join a model"):
        salaries + SufficientStats.of(wages, frame)


# The built-in dataset's own words. Only the generator and the built-in declaration may use
# them: everything else asks the declaration (docstrings' examples may run on the built-in).
BUILT_IN_WORDS = ("salario", "idade", "cidade", "cargo")
MAY_NAME_THEM = {"app/data/generator.py", "app/data/salary.toml"}


def _code_words(path: Path) -> set[str]:
    """Every identifier and string constant of a module's code, docstrings left out."""
    import ast

    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    words = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.add(node.value)
        elif isinstance(node, ast.Name):
            words.add(node.id)
        elif isinstance(node, ast.Attribute):
            words.add(node.attr)
    return words


def test_no_module_but_the_generator_names_the_built_in_columns():
    modules = [path for path in [*ROOT.glob("app/**/*.py"), *ROOT.glob("*.py")]
               if str(path.relative_to(ROOT)) not in MAY_NAME_THEM]
    found = {str(path.relative_to(ROOT)): sorted(word for word in _code_words(path)
                                                 if any(name in word for name in BUILT_IN_WORDS))
             for path in modules}
    assert {path: words for path, words in found.items() if words} == {}
