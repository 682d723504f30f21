"""Reading the config file: YAML with the line of every key, and schema errors a person
can act on (the key path, its line, what is allowed)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache

import yaml
from jsonschema import Draft202012Validator, ValidationError

from monitor.errors import ConfigError
from monitor.schemas import load_schema

__all__ = ["KeyPath", "dotted", "parse_yaml", "schema_problems", "show"]

KeyPath = tuple[str | int, ...]  # ("models", 0, "window", "size") is models[0].window.size


def parse_yaml(text: str, *, source: str) -> tuple[object, dict[KeyPath, int]]:
    """The YAML document as plain data, and the line of every key path in it."""
    loader = yaml.SafeLoader(text)
    lines: dict[KeyPath, int] = {(): 1}
    try:
        node = loader.get_single_node()
        return (None if node is None else _from_node(loader, node, (), lines, source)), lines
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}: " if mark else ""
        raise ConfigError(f"{source}: {where}not valid YAML: {err.problem}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {err}") from err
    finally:
        loader.dispose()


def _from_node(
    loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], source: str
) -> object:
    if isinstance(node, yaml.MappingNode):
        own_keys = {id(key_node) for key_node, _ in node.value}
        loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys; own keys override
        mapping: dict[str, object] = {}
        own_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    f"{source}: line {line}: {dotted(path)}: keys must be plain text"
                )
            key = str(key_node.value)  # the text as written: `yes:` or `1:` stay strings
            if id(key_node) in own_keys:
                if key in own_lines:
                    raise ConfigError(
                        f"{source}: line {line}: {dotted((*path, key))}: duplicate key "
                        f"(first given on line {own_lines[key]})"
                    )
                own_lines[key] = line
            lines[(*path, key)] = line
            mapping[key] = _from_node(loader, value_node, (*path, key), lines, source)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            items.append(_from_node(loader, item, (*path, index), lines, source))
        return items
    return loader.construct_object(node, deep=True)


# --- messages -------------------------------------------------------------------------

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# JSON Schema's type names in the words of YAML
_TYPE_WORDS = {"object": "mapping", "array": "list", "boolean": "boolean (true or false)"}
_TYPES_OF_VALUES = {
    dict: "mapping",
    list: "list",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


def dotted(path: KeyPath) -> str:
    """``("models", 0, "window", "size")`` -> ``models[0].window.size``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text or "(top level)"


def show(value: object) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool | None) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_of(value: object) -> str:
    return _TYPES_OF_VALUES.get(type(value), type(value).__name__)


def schema_problems(data: object) -> Iterator[tuple[KeyPath, str]]:
    for error in _config_validator().iter_errors(data):
        yield from _describe(error, hint=None)


@cache
def _config_validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema("config"))


def _describe(error: ValidationError, hint: str | None) -> Iterator[tuple[KeyPath, str]]:
    """Plain-language problems of one schema error: (key path, what is wrong and allowed)."""
    path: KeyPath = tuple(error.absolute_path)
    value, schema, rule, limit = (
        error.instance,
        error.schema,
        error.validator,
        error.validator_value,
    )
    if not isinstance(schema, dict):
        yield path, error.message
        return
    hint = schema.get("description", hint)
    if rule == "additionalProperties" and isinstance(value, dict):
        allowed = ", ".join(schema.get("properties", {}))
        for key in value:
            if key not in schema.get("properties", {}):
                yield (*path, key), f"unknown key {show(key)}; allowed keys: {allowed}"
    elif rule == "required" and isinstance(value, dict):
        for key in limit:
            if key not in value:
                yield path, f"missing required key {show(key)}"
    elif rule in ("enum", "const"):
        allowed = ", ".join(str(v) for v in (limit if rule == "enum" else [limit]))
        yield path, f"{show(value)} is not allowed; allowed values: {allowed}"
    elif rule == "type":
        wanted = " or ".join(
            _TYPE_WORDS.get(t, t) for t in ([limit] if isinstance(limit, str) else limit)
        )
        yield path, f"expected {wanted}, got {_type_of(value)} {show(value)}"
    elif rule in _BOUNDS:
        yield path, f"must be {_BOUNDS[rule]} {limit}, got {show(value)}"
    elif rule == "minLength":
        yield path, "must not be an empty string"
    elif rule in ("minItems", "minProperties"):
        yield path, "must not be empty; give at least one entry"
    elif rule in ("anyOf", "oneOf"):
        yield from _describe_alternatives(error, path, hint)
    elif rule == "pattern" and hint:
        yield path, f"{show(value)} is not valid: expected {_lower_first(hint)}"
    else:
        yield path, error.message


_BOUNDS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}


def _describe_alternatives(
    error: ValidationError, path: KeyPath, hint: str | None
) -> Iterator[tuple[KeyPath, str]]:
    # Describe only the alternatives meant for this kind of value (the object form of a
    # feature for a mapping, the string form of a duration for text); if none is, say
    # what the alternatives are.
    branches: dict[object, list[ValidationError]] = {}
    for sub in error.context or []:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [
        errors
        for errors in branches.values()
        if not any(
            tuple(e.absolute_path) == path and e.validator in ("type", "enum", "const")
            for e in errors
        )
    ]
    if len(fitting) == 1:
        for sub in fitting[0]:
            yield from _describe(sub, hint)
    else:
        yield path, f"{show(error.instance)} is not valid: expected {_lower_first(hint or '?')}"


def _lower_first(text: str) -> str:
    # "A duration: ..." reads as "expected a duration: ..."; acronyms like "SQLAlchemy" stay
    return text[:1].lower() + text[1:] if text[1:2].islower() else text
