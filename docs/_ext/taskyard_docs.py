"""Sphinx helpers for the taskyard docs.

``.. traitlets-options:: module.Class``
    Lists every configurable trait of a traitlets Application: its config name
    (``Class.trait``), the command-line alias, type, default and help. The page
    is generated from the classes themselves, so it cannot fall behind the code.

``.. traitlets-flags:: module.Class``
    Lists the app's boolean command-line flags (``--debug``, ``--daemonize``).

``.. refusals:: NAME``
    Lists the ipyparallel options (``NAME`` a command: ``ipcontroller``,
    ``ipengine``, ``ipcluster start``, ``ipcluster stop``, ``ipcluster``
    for its subcommands) or keywords (``Client``, ``Cluster``) taskyard refuses,
    each with what to do instead, from :mod:`taskyard.refusals` itself.

``source-read`` hook
    A page may include ``../examples/dagdeps.py`` with ``literalinclude``; if the
    file is missing from a checkout, the include becomes a short note instead of
    a build error.
"""

from __future__ import annotations

import importlib
import logging
import textwrap
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.application import Sphinx

OPTIONAL_INCLUDES = ("../examples/dagdeps.py",)


def _import(dotted: str) -> Any:
    module_name, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def _type_name(trait: Any) -> str:
    name = type(trait).__name__
    values = getattr(trait, "values", None)
    if values:
        return f"{name}: one of " + ", ".join(repr(v) for v in values)
    return name


def _default(app: Any, trait: Any) -> str:
    """The value a fresh instance has, so that ``@default`` methods count."""
    try:
        value = getattr(app, trait.name)
    except Exception:  # noqa: BLE001 - fall back to the static default
        return str(trait.default_value_repr())
    if trait.name == "log_level" and isinstance(value, int):
        return f"{value!r} ({logging.getLevelName(value)})"
    return repr(value)


def _aliases_by_trait(app_cls: type) -> dict[tuple[str, str], list[str]]:
    """``(owner_class_name, trait_name) -> ["--alias", ...]`` from ``app_cls.aliases``."""
    found: dict[tuple[str, str], list[str]] = {}
    for alias, target in dict(getattr(app_cls, "aliases", {}) or {}).items():
        if isinstance(target, tuple):  # (target, help) form
            target = target[0]
        cls_name, _, trait_name = str(target).rpartition(".")
        dash = "-" if len(alias) == 1 else "--"
        found.setdefault((cls_name, trait_name), []).append(f"{dash}{alias}")
    return found


def _alias_for(app_cls: type, trait_name: str, aliases: dict[tuple[str, str], list[str]]) -> list[str]:
    names = [klass.__name__ for klass in app_cls.__mro__]
    out: list[str] = []
    for cls_name in names:
        out.extend(aliases.get((cls_name, trait_name), []))
    return out


def _help_paragraphs(trait: Any) -> list[nodes.Node]:
    """The trait's help as plain paragraphs (never parsed as reST).

    Settings inherited from traitlets' own Application keep only their first
    paragraph, with a pointer to the traitlets documentation.
    """
    text = textwrap.dedent(trait.help or "").strip()
    chunks = [" ".join(chunk.split()) for chunk in text.split("\n\n") if chunk.strip()]
    if not chunks:
        return [nodes.paragraph(text="(no help text)")]
    owner = getattr(trait, "this_class", None)
    if owner is not None and not owner.__module__.startswith("taskyard"):
        note = f"A setting of traitlets' {owner.__name__}; see the traitlets documentation."
        return [nodes.paragraph(text=chunks[0]), nodes.paragraph(text=note)]
    return [nodes.paragraph(text=chunk) for chunk in chunks]


def _field(name: str, body: nodes.Node) -> nodes.field:
    return nodes.field("", nodes.field_name(text=name), nodes.field_body("", body))


class TraitletsOptions(Directive):
    """Render every configurable trait of a traitlets class."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        app_cls = _import(self.arguments[0])
        aliases = _aliases_by_trait(app_cls)
        app = app_cls()
        items = nodes.definition_list()
        traits = app_cls.class_traits(config=True)
        for trait_name in sorted(traits):
            trait = traits[trait_name]
            config_name = f"{app_cls.__name__}.{trait_name}"
            term = nodes.term()
            term += nodes.literal(text=config_name)
            for alias in _alias_for(app_cls, trait_name, aliases):
                term += nodes.Text(", ")
                term += nodes.literal(text=f"{alias}=<value>" if alias.startswith("--") else f"{alias} <value>")
            target_id = nodes.make_id(config_name)
            term["ids"].append(target_id)
            definition = nodes.definition()
            for paragraph in _help_paragraphs(trait):
                definition += paragraph
            fields = nodes.field_list()
            fields += _field("type", nodes.paragraph(text=_type_name(trait)))
            fields += _field("default", nodes.paragraph("", "", nodes.literal(text=_default(app, trait))))
            fields += _field("config file", nodes.paragraph("", "", nodes.literal(text=f"c.{config_name} = ...")))
            definition += fields
            items += nodes.definition_list_item("", term, definition)
        return [items]


class TraitletsFlags(Directive):
    """Render an app's flags (``--debug`` and friends)."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        app_cls = _import(self.arguments[0])
        items = nodes.definition_list()
        for flag, (settings, help_text) in sorted(dict(getattr(app_cls, "flags", {}) or {}).items()):
            term = nodes.term()
            term += nodes.literal(text=f"--{flag}")
            definition = nodes.definition()
            definition += nodes.paragraph(text=str(help_text).strip())
            sets = ", ".join(
                f"{cls}.{name} = {value!r}"
                for cls, values in sorted(dict(settings).items())
                for name, value in sorted(dict(values).items())
            )
            definition += nodes.paragraph("", "Sets ", nodes.literal(text=sets))
            items += nodes.definition_list_item("", term, definition)
        return [items]


class Refusals(Directive):
    """Render what taskyard refuses for one command or class (see taskyard.refusals)."""

    required_arguments = 1
    optional_arguments = 1  # "ipcluster start" arrives as two words
    has_content = False

    def run(self) -> list[nodes.Node]:
        from taskyard import refusals

        name = " ".join(self.arguments)
        keywords = {"Client": refusals.CLIENT_REFUSALS, "Cluster": refusals.CLUSTER_REFUSALS}
        if name in keywords:
            table, spell = keywords[name], lambda option: f"{option}="
        elif name == "ipcluster":
            table, spell = refusals.SUBCOMMAND_REFUSALS, lambda option: f"ipcluster {option}"
        else:
            table = refusals.CLI_REFUSALS[name]
            spell = lambda option: f"-{option}" if len(option) == 1 else f"--{option}"  # noqa: E731
        items = nodes.definition_list()
        for option, instead in sorted(table.items()):
            term = nodes.term()
            term += nodes.literal(text=spell(option))
            definition = nodes.definition()
            definition += nodes.paragraph(text=instead[:1].upper() + instead[1:] + ".")
            items += nodes.definition_list_item("", term, definition)
        return [items]


def _optional_includes(app: Sphinx, docname: str, source: list[str]) -> None:
    text = source[0]
    for relative in OPTIONAL_INCLUDES:
        directive = f".. literalinclude:: {relative}"
        if directive not in text:
            continue
        path = (Path(app.srcdir) / Path(docname).parent / relative).resolve()
        if path.exists():
            continue
        note = f".. note::\n\n   The script ``{relative.lstrip('./')}`` is not in this checkout."
        lines = text.split("\n")
        out: list[str] = []
        skipping = False
        for line in lines:
            if line.strip() == directive.strip():
                indent = line[: len(line) - len(line.lstrip())]
                out.extend(indent + part if part else part for part in note.split("\n"))
                skipping = True
                continue
            if skipping and (line.startswith((" ", "\t")) and line.strip()):
                continue  # the directive's options
            skipping = False
            out.append(line)
        text = "\n".join(out)
    source[0] = text


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("traitlets-options", TraitletsOptions)
    app.add_directive("traitlets-flags", TraitletsFlags)
    app.add_directive("refusals", Refusals)
    app.connect("source-read", _optional_includes)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
