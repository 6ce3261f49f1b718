"""What a model reference names, and the user's own code behind it.

A model reference is one of:

* a name: ``resnet50`` (torchvision), ``timm:convnext_atto`` (timm); ``timm:`` and ``python:``
  (a network object's record, see below) are reserved prefixes, never module names;
* a user's factory: ``path/to/file.py:build`` or ``package.module:build``, called with the
  keyword arguments of ``--model-kwargs`` (``width=16,depth=2``; values read as YAML);
* a secli checkpoint file (``.pt``, ``.pth``, ``.ckpt``, ``.bin``, or any existing file);
* in Python, an ``nn.Module`` object (see ``secli.networks.models.resolve_model``).

Importing a user's file or module runs its code. secli does it only where the user named that
code: on the command line, in an API call, or in a spec file of theirs. A checkpoint (or any
file secli wrote) that names a factory is rebuilt only with ``trust_code=True`` (``--trust-code``):
a file received from someone else must never run code because it was opened.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import pkgutil
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from secli.util.bounds import check_python_size
from secli.util.errors import SecliError, SecliUsageError, closest_names, describe_exception, did_you_mean, shorten
from secli.util.yaml_files import read_yaml

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
TIMM_PREFIX = "timm:"
#: The ``arch`` recorded for a model given as a Python object: it names the class, and cannot be
#: rebuilt from the name (its constructor's arguments are unknown).
OBJECT_PREFIX = "python:"

_IDENTIFIER = r"[A-Za-z_]\w*"
_MODULE_REF = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}(\.{_IDENTIFIER})*$")
_FILE_REF = re.compile(rf"^(?P<file>.+\.py):(?P<attr>{_IDENTIFIER}(\.{_IDENTIFIER})*)$")


@dataclass(frozen=True)
class Factory:
    """A user's function (or class) that returns an ``nn.Module``: ``file.py:attr`` or ``pkg.mod:attr``."""

    reference: str
    file: str | None  # the .py file, or None for an importable module
    module: str | None  # the dotted module name, or None for a file
    attr: str  # the attribute in the module, dotted for nested ones (``Models.small``)

    @property
    def where(self) -> str:
        return self.file if self.file is not None else str(self.module)


def parse_factory(ref: str) -> Factory | None:
    """The factory ``ref`` names, or None when it names something else (a name, a checkpoint)."""
    if ref.startswith((TIMM_PREFIX, OBJECT_PREFIX)):
        return None
    match = _FILE_REF.match(ref)
    if match:
        return Factory(ref, match["file"], None, match["attr"])
    if _MODULE_REF.match(ref):
        module, _, attr = ref.partition(":")
        return Factory(ref, None, module, attr)
    return None


def is_factory(ref: str) -> bool:
    return parse_factory(ref) is not None


def looks_like_file(ref: str) -> bool:
    """A checkpoint file (not a factory: ``models/net.py:build`` names code, not a file to read)."""
    if is_factory(ref):
        return False
    return ref.endswith(CHECKPOINT_SUFFIXES) or Path(ref).is_file() or "/" in ref


def check_plain_python_file(ref: str) -> None:
    """``model.py`` without ``:factory``: say how to name the function instead of reading it as weights."""
    if ref.endswith(".py") and not is_factory(ref):
        raise SecliUsageError(f"{ref} is Python code: name the function that builds the model, e.g. {ref}:build")


# ------------------------------------------------------------------------------------ importing
_IMPORTED: dict[Path, Any] = {}


def _import_file(path_text: str, base: Path | None) -> Any:
    path = Path(path_text).expanduser()
    if not path.is_absolute() and not path.is_file() and base is not None and (base / path).is_file():
        path = base / path  # a checkpoint's relative reference, read from beside the checkpoint
    if not path.is_file():
        folder = path.parent if path.parent.is_dir() else Path(".")
        near = closest_names(path.name, [p.name for p in folder.glob("*.py")])
        hint = f"did you mean {' or '.join(str(folder / n) for n in near)}?" if near else None
        raise SecliUsageError(f"no Python file {path_text}", hint=hint)
    path = path.resolve()
    if path in _IMPORTED:
        return _IMPORTED[path]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"secli_user_{stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SecliUsageError(f"cannot import {path_text} as Python code")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # classes defined there pickle and deep-copy by reference
    sys.path.insert(0, str(path.parent))  # the file's own imports of its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # any error in the user's file
        sys.modules.pop(name, None)
        raise SecliUsageError(f"cannot import {path_text}: {describe_exception(exc, 160)}") from None
    finally:
        sys.path.remove(str(path.parent))
    _IMPORTED[path] = module
    return module


def _import_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name) and name[len(exc.name):len(exc.name) + 1] in ("", "."):
            parent, _, last = exc.name.rpartition(".")
            siblings = _submodules(parent)
            near = closest_names(last, siblings)
            hint = f"did you mean {' or '.join(f'{parent}.{n}' if parent else n for n in near)}?" if near else None
            raise SecliUsageError(f"no Python module {exc.name!r}", hint=hint) from None
        raise SecliUsageError(f"cannot import {name}: {describe_exception(exc, 160)}") from None
    except Exception as exc:  # any error in the user's module
        raise SecliUsageError(f"cannot import {name}: {describe_exception(exc, 160)}") from None


def _submodules(parent: str) -> list[str]:
    """The modules importable under ``parent`` (top-level ones for ``""``), for near matches."""
    if not parent:
        return [m.name for m in pkgutil.iter_modules()]
    try:
        package = importlib.import_module(parent)
    except Exception:
        return []
    return [m.name for m in pkgutil.iter_modules(getattr(package, "__path__", []))]


def load_factory(factory: Factory, base: Path | None = None) -> Callable[..., Any]:
    """Import the file or module and return the callable it names (exit 2 with near matches)."""
    obj = _import_file(factory.file, base) if factory.file is not None else _import_module(str(factory.module))
    for i, part in enumerate(factory.attr.split(".")):
        if not hasattr(obj, part):
            public = [n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None))]
            where = factory.where + (f" ({'.'.join(factory.attr.split('.')[:i])})" if i else "")
            raise SecliUsageError(f"{where} has no {part!r}", hint=did_you_mean(part, public))
        obj = getattr(obj, part)
    if not callable(obj):
        raise SecliUsageError(f"{factory.reference} is a {type(obj).__name__}, not a function that builds a model")
    return obj


def _signature(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # some builtins and C extensions have none
        return None


def takes_keyword(func: Callable[..., Any], name: str) -> bool:
    """Whether ``func`` accepts ``name=`` (by name or through ``**kwargs``)."""
    signature = _signature(func)
    if signature is None:
        return False
    params = signature.parameters.values()
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params) or any(
        p.name == name and p.kind is not inspect.Parameter.POSITIONAL_ONLY for p in params)


def call_factory(factory: Factory, func: Callable[..., Any], kwargs: dict[str, Any]) -> nn.Module:
    """``func(**kwargs)``: arguments it does not take are refused first (exit 2); an error raised
    inside it is one line naming the factory (exit 1); anything but an ``nn.Module`` is refused."""
    signature = _signature(func)
    if signature is not None:
        try:
            signature.bind(**kwargs)
        except TypeError as exc:
            names = [p.name for p in signature.parameters.values()]
            unknown = [k for k in kwargs if k not in names]
            hint = did_you_mean(unknown[0], names) if unknown else None
            takes = ", ".join(names) or "no arguments"
            raise SecliUsageError(f"{factory.reference}: {exc} (it takes {takes})", hint=hint) from None
    try:
        model = func(**kwargs)
    except Exception as exc:  # whatever the user's code raises
        raise SecliError(f"the factory {factory.reference} failed: {describe_exception(exc, 160)}") from None
    if not isinstance(model, nn.Module):
        raise SecliUsageError(f"the factory {factory.reference} returned {shorten(type(model).__name__)}, "
                              "not a torch.nn.Module")
    return model


def refuse_untrusted(factory: Factory, source: str) -> None:
    """A file secli wrote that names a factory: opening it must not run code without consent."""
    raise SecliUsageError(
        f"{source} was made from {factory.reference}; loading it imports and runs that code",
        hint="pass --trust-code if you trust that code; in Python, trust_code=True",
    )


# ------------------------------------------------------------------------------ keyword arguments
def parse_model_kwargs(value: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """``--model-kwargs``: ``key=value,...`` (values read as YAML: 16, true, [1, 2], {a: b}) or a
    YAML file holding one mapping; a mapping (Python) is taken as it is."""
    if value is None or isinstance(value, dict):
        data = value
    elif value.endswith((".yaml", ".yml")) and "=" not in value:
        data = read_yaml(value)
        if not isinstance(data, dict):
            raise SecliUsageError(f"{value} must hold a mapping of keyword arguments, got {type(data).__name__}")
    else:
        data = _key_values(value)
    if data is None:
        return None
    check_python_size(data, "--model-kwargs")
    for key in data:
        if not isinstance(key, str) or not key.isidentifier():
            raise SecliUsageError(f"--model-kwargs: {shorten(repr(key))} is not a keyword name")
    return dict(data)


def _key_values(text: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in _top_level_split(text):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SecliUsageError("--model-kwargs takes key=value pairs separated by commas, got "
                                  f"{shorten(repr(item))}")
        try:
            result[key] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise SecliUsageError(f"--model-kwargs: cannot read the value of {key!r}: "
                                  f"{describe_exception(exc, 100)}") from None
    return result


def _top_level_split(text: str) -> list[str]:
    """Split on commas outside brackets and braces (``sizes=[1, 2],width=3`` is two items)."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        if char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [item for item in items if item.strip()]
