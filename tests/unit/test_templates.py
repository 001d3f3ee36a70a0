"""Notebook templates: parameters become literals in the kernel's language, never code."""

import json

import nbformat
import pytest
from openbis_jupyterhub.hub import templates


def notebook(language, kernel=None, tags=()):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": kernel or language,
        "language": language,
        "display_name": "K",
    }
    nb.cells = [nbformat.v4.new_markdown_cell("# T"), nbformat.v4.new_code_cell("x = 1")]
    nb.cells[1].metadata["tags"] = list(tags)
    return nb


def injected(nb, params):
    result = templates.render(nb, params)
    cells = [c for c in result.cells if templates.INJECTED_TAG in c.metadata.get("tags", [])]
    assert len(cells) == 1
    return result, cells[0].source


def test_python_literals():
    _, source = injected(notebook("python"), {"a": "x'\"\n", "n": 1.5, "b": True, "l": [1, None]})
    namespace = {}
    exec(source, namespace)  # noqa: S102 (the point: the cell is data)
    assert namespace["a"] == "x'\"\n" and namespace["n"] == 1.5 and namespace["l"] == [1, None]


def test_code_in_values_stays_text():
    _, source = injected(notebook("python"), {"p": "__import__('os').system('id')"})
    namespace = {}
    exec(source, namespace)  # noqa: S102
    assert namespace["p"] == "__import__('os').system('id')"


def test_cell_goes_after_the_parameters_cell():
    result, _ = injected(notebook("python", tags=["parameters"]), {"a": 1})
    assert templates.INJECTED_TAG in result.cells[2].metadata["tags"]
    result, _ = injected(notebook("python"), {"a": 1})
    assert templates.INJECTED_TAG in result.cells[0].metadata["tags"]


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("r", 's <- "a\\"b\\\\c\\n"\nv <- c(1, 2)\nm <- list("k" = TRUE)\nz <- NULL'),
        ("octave", 's = "a\\"b\\\\c\\n";\nv = {1, 2};\nm = struct("k", {true});\nz = [];'),
        ("bash", "s='a\"b\\c\n'\nv=('1' '2')\nm='{\"k\": true}'\nz='null'"),
    ],
)
def test_literals_per_language(language, expected):
    params = {"s": 'a"b\\c\n', "v": [1, 2], "m": {"k": True}, "z": None}
    assert injected(notebook(language), params)[1] == expected


def test_bash_quotes_cannot_be_closed():
    assert injected(notebook("bash"), {"p": "'; rm -rf ~; '"})[1] == "p=''\\''; rm -rf ~; '\\'''"


def test_sos_cells_run_as_python_in_the_sos_kernel():
    result, source = injected(notebook("sos", kernel="sos"), {"a": "x"})
    assert source == "a = 'x'"
    assert result.cells[0].metadata["kernel"] == "SoS"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[1]", "JSON object"),
        ("{", "not valid JSON"),
        ('{"1a": 1}', "not an identifier"),
        ('{"a": NaN}', "not valid JSON"),
        ('{"a": 1e999}', "too large"),
        ('{"a": "\\u0000"}', "NUL"),
    ],
)
def test_bad_parameters(text, words):
    with pytest.raises(templates.TemplateError, match=words):
        templates.parse_parameters(text)


def test_reserved_names_are_refused():
    with pytest.raises(templates.TemplateError, match="reserved in r"):
        templates.render(notebook("r"), {"TRUE": 1})
    with pytest.raises(templates.TemplateError, match="reserved in python"):
        templates.render(notebook("python"), {"lambda": 1})


def test_unsupported_language():
    with pytest.raises(templates.TemplateError, match="'julia' are not supported"):
        templates.render(notebook("julia"), {})


def test_output_filename_fills_parameters(tmp_path):
    nb = notebook("python")
    nb.metadata["openbis"] = {"filename": "Run {sample}.ipynb"}
    assert templates.output_filename(tmp_path / "t.ipynb", nb, {"sample": "S1"}) == "Run S1.ipynb"
    with pytest.raises(templates.TemplateError, match="needs the parameter 'sample'"):
        templates.output_filename(tmp_path / "t.ipynb", nb, {})
    with pytest.raises(templates.TemplateError, match="slash"):
        templates.output_filename(tmp_path / "t.ipynb", nb, {"sample": "../x"})


def test_find_template_stays_inside_the_folder(tmp_path):
    root = tmp_path / "templates"
    root.mkdir()
    (root / "a.ipynb").write_text(json.dumps(nbformat.v4.new_notebook()))
    (tmp_path / "secret.ipynb").write_text("{}")
    (root / "link.ipynb").symlink_to(tmp_path / "secret.ipynb")
    assert templates.find_template(root, "a.ipynb") == (root / "a.ipynb").resolve()
    for path in ["../secret.ipynb", "link.ipynb", ".a.ipynb", "a", "missing.ipynb", "a\x00.ipynb"]:
        with pytest.raises(templates.UnknownTemplate):
            templates.find_template(root, path)
