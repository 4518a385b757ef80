"""What ``view.execute(code).get()`` gives per engine: an :class:`ExecuteReply`.

An ``execute`` request (what ``%px`` sends) has no Python value to return;
its result is how the cell went on that engine: its ``execution_count``, the
rich ``execute_result`` of its last expression (if any), and the request's
metadata (stdout, stderr, displayed outputs, timestamps). ipyparallel gives
an object of that name and shape, so code that reads ``r.execution_count``,
``r.data['text/plain']`` or ``r['stdout']`` moves over unchanged, and in a
notebook the reply displays as the engine's ``Out[...]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: The longest result text ``repr`` shows before cutting it with "...".
REPR_TEXT = 32


def _mime_repr(mime: str) -> Callable[[ExecuteReply], Any]:
    """An ``_repr_<kind>_`` method: the result's ``mime`` form, or None."""

    def method(self: ExecuteReply) -> Any:
        return self._repr_mime_(mime)

    method.__name__ = f"_repr_{mime.split('/')[-1]}_"
    return method


class ExecuteReply:
    """One engine's answer to an ``execute`` request.

    Attributes
    ----------
    msg_id : str
        The request's id.
    execution_count : int or None
        The engine shell's counter for this cell (None on an engine without
        IPython, which does not count cells).
    metadata : Metadata
        The request's metadata; its keys are also readable as items
        (``reply['stdout']``) and attributes (``reply.engine_id``).
    """

    def __init__(self, msg_id: str, content: Mapping[str, Any], metadata: Mapping[str, Any]) -> None:
        self.msg_id = msg_id
        self.execution_count = content.get("execution_count")
        self.metadata = metadata
        self._result: Mapping[str, Any] = content.get("execute_result") or {}

    @property
    def execute_result(self) -> Mapping[str, Any] | None:
        """The last expression's rich result (``{"data": ..., "metadata": ...}``), or None."""
        return self._result or None

    @property
    def data(self) -> dict[str, Any]:
        """The result by MIME type (``{"text/plain": "42", ...}``); empty if the cell had no value."""
        return dict(self._result.get("data") or {})

    @property
    def text(self) -> str:
        """The result's ``text/plain`` form ("" if none)."""
        return str(self.data.get("text/plain", ""))

    def display(self) -> None:
        """Show the result in the current IPython cell, in its richest form."""
        from IPython.display import publish_display_data

        publish_display_data(self.data, dict(self._result.get("metadata") or {}))  # type: ignore[no-untyped-call]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        data = self.data
        if "text/plain" in data:
            data["text/plain"] = self._prompted(self.text)
        return data, dict(self._result.get("metadata") or {})

    def _repr_mime_(self, mime: str) -> Any:
        """The result's ``mime`` form (with its metadata, if it has some), or None."""
        data = self.data
        if mime not in data:
            return None
        metadata = dict(self._result.get("metadata") or {})
        return (data[mime], metadata[mime]) if mime in metadata else data[mime]

    # IPython's RichOutput names, as ipyparallel's ExecuteReply has them.
    _repr_html_ = _mime_repr("text/html")
    _repr_markdown_ = _mime_repr("text/markdown")
    _repr_latex_ = _mime_repr("text/latex")
    _repr_json_ = _mime_repr("application/json")
    _repr_javascript_ = _mime_repr("application/javascript")
    _repr_png_ = _mime_repr("image/png")
    _repr_jpeg_ = _mime_repr("image/jpeg")
    _repr_svg_ = _mime_repr("image/svg+xml")
    _repr_pdf_ = _mime_repr("application/pdf")

    def _prompted(self, text: str) -> str:
        engine = self.metadata.get("engine_id")
        count = "" if self.execution_count is None else f":{self.execution_count}"
        sep = "\n" if "\n" in text else " "
        return f"Out[{engine}{count}]:{sep}{text}"

    def __getitem__(self, key: str) -> Any:
        return self.metadata[key]

    def __getattr__(self, key: str) -> Any:
        metadata = self.__dict__.get("metadata")
        if key.startswith("_") or metadata is None or key not in metadata:
            raise AttributeError(key)
        return metadata[key]

    def __repr__(self) -> str:
        text = self.text
        if len(text) > REPR_TEXT:
            text = text[: REPR_TEXT - 3] + "..."
        return f"<ExecuteReply[{self.execution_count}]: {text}>"
