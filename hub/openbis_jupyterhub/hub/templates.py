"""Notebook templates for the SampleDB-style template protocol (see ``handlers.py``).

A template is an ``.ipynb`` file below the templates folder. A caller names it and gives
parameters as a JSON object; the new notebook is the template plus ONE code cell that assigns
the parameters as literals in the template's kernel language. Values only ever become string,
number, boolean and collection literals, so a value can never turn into code.
"""

import copy
import json
import keyword
import math
import re
import string
from pathlib import Path

import nbformat

from ..validator import check_notebook_filename

INJECTED_TAG = "injected-parameters"
# papermill's convention: the injected cell goes right after the cell with the defaults
PARAMETERS_TAG = "parameters"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# words a parameter may not be named in the language it is assigned in
_RESERVED = {
    "python": set(keyword.kwlist),
    "r": set(
        "if else repeat while function for next break in TRUE FALSE NULL Inf NaN NA "
        "NA_integer_ NA_real_ NA_character_ NA_complex_ T F".split()
    ),
    "octave": set(
        "break case catch continue do else elseif end end_try_catch end_unwind_protect "
        "endfor endfunction endif endswitch endwhile for function global if otherwise "
        "persistent return switch try until unwind_protect unwind_protect_cleanup while "
        "true false pi i j e Inf NaN NA".split()
    ),
    "bash": set(),
}


class TemplateError(ValueError):
    """A template that cannot be used with these parameters; the message is for the user."""


class UnknownTemplate(TemplateError):
    """No template by that name inside the templates folder."""


def find_template(root: Path, path: str) -> Path:
    """The template file ``path`` below ``root``; UnknownTemplate when there is none.

    Symbolic links are followed before the check, so nothing outside ``root`` is ever read.
    """
    unknown = UnknownTemplate(f"There is no notebook template {path!r}.")
    if (
        not path.endswith(".ipynb")
        or "\x00" in path
        or any(part.startswith(".") for part in Path(path).parts)
    ):
        raise unknown
    root = root.resolve()
    candidate = (root / path).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        raise unknown
    return candidate


def parse_parameters(text: str) -> dict:
    """The ``params`` JSON object; keys must be identifiers, numbers finite, no NUL."""
    try:
        params = json.loads(text or "{}", parse_constant=_reject_constant)
    except ValueError as e:
        raise TemplateError(f"The parameters are not valid JSON: {e}") from e
    if not isinstance(params, dict):
        raise TemplateError("The parameters must be a JSON object.")
    for name, value in params.items():
        if not _IDENTIFIER.match(name):
            raise TemplateError(f"The parameter name {name!r} is not an identifier.")
        _check_value(value)
    return params


def _reject_constant(constant):
    raise ValueError(f"{constant} is not a number")


def _check_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        raise TemplateError("The parameters contain a number too large to write down.")
    if isinstance(value, str) and "\x00" in value:
        raise TemplateError("The parameters contain a NUL character.")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_value(key)
            _check_value(item)
    if isinstance(value, list):
        for item in value:
            _check_value(item)


def kernel_language(notebook) -> str:
    """The template's language as one of python, r, octave, bash."""
    metadata = notebook.get("metadata", {})
    language = (
        metadata.get("kernelspec", {}).get("language")
        or metadata.get("language_info", {}).get("name")
        or ""
    ).lower()
    # SoS notebooks run their default (SoS) cells as Python
    language = {"sos": "python", "matlab": "octave", "sh": "bash"}.get(language, language)
    if language not in _RESERVED:
        raise TemplateError(f"Templates in {language or 'no language'!r} are not supported.")
    return language


def output_filename(template_path: Path, notebook, params: dict) -> str:
    """``metadata.openbis.filename`` (else the template's name), ``{key}``s filled in."""
    pattern = notebook.get("metadata", {}).get("openbis", {}).get("filename") or template_path.name
    pieces = []
    try:
        fields = list(string.Formatter().parse(pattern))
    except ValueError as e:
        raise TemplateError(f"The template's file name {pattern!r} is malformed: {e}") from e
    for literal, field, spec, conversion in fields:
        pieces.append(literal)
        if field is None:
            continue
        if spec or conversion or field not in params:
            raise TemplateError(f"The file name needs the parameter {field!r}.")
        value = params[field]
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise TemplateError(f"The parameter {field!r} is not text or a number.")
        pieces.append(str(value))
    try:
        return check_notebook_filename("".join(pieces))
    except ValueError as e:
        raise TemplateError(str(e)) from e


def render(notebook, params: dict):
    """A copy of ``notebook`` with the parameters cell inserted."""
    language = kernel_language(notebook)
    lines = []
    for name, value in params.items():
        if name in _RESERVED[language]:
            raise TemplateError(f"The parameter name {name!r} is reserved in {language}.")
        lines.append(_ASSIGN[language](name, value))
    cell = nbformat.v4.new_code_cell("\n".join(lines))
    cell.metadata["tags"] = [INJECTED_TAG]
    if language == "python" and notebook.metadata.get("kernelspec", {}).get("name") == "sos":
        cell.metadata["kernel"] = "SoS"
    result = copy.deepcopy(notebook)
    cells = result.cells
    position = next(
        (i + 1 for i, c in enumerate(cells) if PARAMETERS_TAG in c.metadata.get("tags", [])), 0
    )
    cells.insert(position, cell)
    nbformat.validate(result)
    return result


# --- literals per language ----------------------------------------------------------------


def _python(value) -> str:
    # repr of JSON values (str, int, float, bool, None, list, dict) is a Python literal
    return repr(value)


def _r_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", escaped) + '"'


def _r(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _r_string(value)
    if isinstance(value, list):
        # a vector when the items are text, numbers or booleans of one kind (c() is NULL)
        constructor = "c" if not value or _scalar_kind(value) else "list"
        return constructor + "(" + ", ".join(_r(v) for v in value) + ")"
    return "list(" + ", ".join(f"{_r_string(k)} = {_r(v)}" for k, v in value.items()) + ")"


def _octave_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + _CONTROL.sub(lambda m: f"\\{ord(m.group()):03o}", escaped) + '"'


def _octave(value) -> str:
    if value is None:
        return "[]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _octave_string(value)
    if isinstance(value, list):
        return "{" + ", ".join(_octave(v) for v in value) + "}"
    fields = []
    for key, item in value.items():
        if not _IDENTIFIER.match(key):
            raise TemplateError(f"Octave struct field names must be identifiers, not {key!r}.")
        # a value in braces keeps struct() from making a struct array out of a cell
        fields.append(f'"{key}", {{{_octave(item)}}}')
    return "struct(" + ", ".join(fields) + ")"


def _bash_word(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return "'" + text.replace("'", "'\\''") + "'"


def _bash(value) -> str:
    # a list of text, numbers or booleans becomes an array; anything nested stays JSON text
    if isinstance(value, list) and (not value or _scalar_kind(value)):
        return "(" + " ".join(_bash_word(v) for v in value) + ")"
    return _bash_word(value)


def _scalar_kind(values: list):
    """The one type all ``values`` share when they are text, numbers or booleans, else None."""
    kinds = {
        bool if isinstance(v, bool) else float if isinstance(v, int | float) else type(v)
        for v in values
    }
    kind = kinds.pop() if len(kinds) == 1 else None
    return kind if kind in (str, float, bool) else None


_ASSIGN = {
    "python": lambda name, value: f"{name} = {_python(value)}",
    "r": lambda name, value: f"{name} <- {_r(value)}",
    "octave": lambda name, value: f"{name} = {_octave(value)};",
    "bash": lambda name, value: f"{name}={_bash(value)}",
}
