"""A notebook's parameters, as the runner (`lstm_nb.run`) and the command line (`lstm_nb.train`) both
read them: a value typed on the command line, and the check of every parameter against the notebook's
`parameters` cell (declared, of the declared type, a known preset) before anything runs."""

import ast
import re

from . import presets
from .extras import require

# A parameter's type: its type comment in the parameters cell (`epochs = None  # type: Optional[int]`), else
# the type of its default value; a parameter whose default is None and has no annotation takes anything.
TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "None": (type(None),),
         "list": (list,), "dict": (dict,)}


def parse_value(text):
    """A Python literal when it parses as one (3, 0.5, None, [1, 2]), otherwise the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def accepted_types(declared):
    """The type names a declared parameter (papermill's inspection of it) accepts; None = any."""
    annotation = declared["inferred_type_name"]
    optional = re.fullmatch(r"Optional\[(\w+)\]", annotation)
    if optional:
        return [optional.group(1), "None"]
    if annotation in TYPES and annotation != "None":
        return [annotation]
    default = parse_value(declared["default"])
    return None if default is None else [type(default).__name__]


def _type_problem(name, value, declared):
    names = accepted_types(declared)
    if names is None or any(n not in TYPES for n in names):
        return None
    types = tuple(t for n in names for t in TYPES[n])
    if isinstance(value, types) and not (isinstance(value, bool) and bool not in types):
        return None
    return f"parameter {name} must be {' or '.join(names)}, got {value!r} ({type(value).__name__})"


def check_parameters(notebook, parameters):
    """Reject parameters the notebook's `parameters` cell does not declare, values of the wrong type,
    and unknown presets."""
    papermill = require("papermill")  # the runner's dependency: imported only when a notebook's parameters are read

    try:
        declared = papermill.inspect_notebook(str(notebook))
    except ValueError as e:  # e.g. no kernelspec in its metadata
        raise SystemExit(f"{notebook}: cannot read its parameters cell: {e}") from e
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise SystemExit(
            f"{notebook}: no parameter(s) {', '.join(unknown)}; it declares {', '.join(sorted(declared)) or 'none'}"
        )
    problems = [p for name, value in parameters.items() if (p := _type_problem(name, value, declared[name]))]
    if problems:
        raise SystemExit(f"{notebook}: " + "; ".join(problems))
    known = presets.PRESETS.get(notebook.stem)
    if "preset" in parameters and known is not None and parameters["preset"] not in known:
        raise SystemExit(
            f"{notebook}: unknown preset {parameters['preset']!r}; choose one of {', '.join(sorted(known))}"
        )


def default_preset(notebook):
    papermill = require("papermill")

    declared = papermill.inspect_notebook(str(notebook)).get("preset")
    return parse_value(declared["default"]) if declared else "default"
