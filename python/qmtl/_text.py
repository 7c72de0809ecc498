"""Documents given as text, a path or a mapping."""
from __future__ import annotations

import json
import os
from typing import Mapping, Tuple, Union


def text_of(doc: Union[str, os.PathLike, Mapping], what: str) -> Tuple[str, str]:
    """(text, source for error messages) of a document: a mapping becomes JSON,
    a path (or a one-line string naming a file) is read, other text is taken
    as it is."""
    if isinstance(doc, Mapping):
        return json.dumps(doc), what
    if isinstance(doc, os.PathLike) or (
        isinstance(doc, str) and "\n" not in doc and os.path.isfile(doc)
    ):
        path = os.fspath(doc)
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    return str(doc), what
