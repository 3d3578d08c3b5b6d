"""Constructor signatures and class constants of a config's ``_target_``, read from the source without importing it.

The validation layer checks every value against the type hints of the constructor it goes to. Importing the
classes to read those hints would import torch and Lightning (seconds) before a typo could be answered, so the
hints are read from the source files with ``ast``: the module's file is found without running any package's
``__init__``, names are followed through ``from x import y`` re-exports, a class's ``**kwargs`` through its base
classes as Python's MRO would, and annotations are evaluated with the light modules they name (``typing``,
``collections.abc``, ``pathlib``) and stand-in classes for the heavy ones (``nn.Module``). Where the source cannot
be read that way (a compiled module, a class made at run time), the class is imported and inspected instead: the
answer is the same, only slower. Written here because no library reads one class's signature statically without
loading whole packages (griffe parses every file of a package: seconds for Lightning).
"""

from __future__ import annotations

import ast
import builtins
import copy
import functools
import importlib
import importlib.machinery
import importlib.util
import inspect
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# modules cheap enough to import for the names annotations use; anything else gets stand-ins
LIGHT_MODULES = ("typing", "typing_extensions", "collections", "collections.abc", "pathlib", "os", "datetime", "enum")
OWN_PACKAGE = "recipe."  # a class of this package passes its **kwargs to its parent (validation.checks)
NO_INIT_MODULES = ("abc", "typing", "typing_extensions")  # base classes with no constructor arguments
DATACLASS_DECORATORS = {"dataclass", "dataclasses.dataclass"}


class NotStatic(Exception):
    """The source cannot answer statically; the caller imports the class instead."""


class _StandInType(type):
    """Names from a heavy module in an annotation (``nn.Module``, ``torch.device``) become classes of this type: no
    config value is an instance of one, and ``X.Y``, ``X[...]``, ``X(...)`` and ``X | Y`` still evaluate."""

    def __getattr__(cls, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _stand_in(f"{cls.__qualname__}.{attr}")

    def __getitem__(cls, item: Any) -> Any:
        return cls

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls


@functools.cache
def _stand_in(name: str) -> type:
    stand_in = _StandInType(name.rpartition(".")[2], (), {"__module__": "stand_in"})
    stand_in.__qualname__ = name
    return stand_in


@dataclass
class _Module:
    """One parsed module: its top-level names, each a class, an expression or an import."""

    name: str
    package: str  # what a relative import is relative to
    classes: dict[str, ast.ClassDef]
    functions: set[str]
    values: dict[str, ast.expr]
    imports: dict[str, tuple[str, str | None]]  # local name -> (module, attribute or None for the module itself)
    star_imports: list[str]


def _module_file(name: str) -> tuple[Path, bool] | None:
    """The source file of module ``name`` and whether it is a package, found without importing anything."""
    top, *rest = name.split(".")
    try:
        spec = importlib.util.find_spec(top)  # a top-level name: finds, runs nothing
    except (ImportError, ValueError):
        return None
    for depth in range(1, len(rest) + 1):  # each package's folder holds the next name, found without running it
        if spec is None or not spec.submodule_search_locations:
            return None
        dotted = ".".join([top, *rest[:depth]])
        spec = importlib.machinery.PathFinder.find_spec(dotted, list(spec.submodule_search_locations))
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin), spec.submodule_search_locations is not None


def _absolute(module: _Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.package.split(".")
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _collect(module: _Module, body: list[ast.stmt]) -> None:
    for node in body:
        if isinstance(node, ast.ClassDef):
            module.classes.setdefault(node.name, node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            module.functions.add(node.name)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            module.values.setdefault(node.targets[0].id, node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            module.values.setdefault(node.target.id, node.value)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    module.imports.setdefault(alias.asname, (alias.name, None))
                else:
                    top = alias.name.split(".")[0]
                    module.imports.setdefault(top, (top, None))
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            for alias in node.names:
                if alias.name == "*":
                    module.star_imports.append(source)
                else:
                    module.imports.setdefault(alias.asname or alias.name, (source, alias.name))
        elif isinstance(node, ast.If | ast.Try):  # TYPE_CHECKING blocks, optional imports: the first branch
            _collect(module, node.body)


@functools.cache
def _parse(name: str) -> _Module | None:
    found = _module_file(name)
    if found is None:
        return None
    path, is_package = found
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    module = _Module(name, name if is_package else name.rpartition(".")[0], {}, set(), {}, {}, [])
    _collect(module, tree.body)
    return module


@dataclass(frozen=True)
class _Found:
    """What a name refers to: a class (with the module defining it), an expression, or a module."""

    module: _Module | None
    cls: ast.ClassDef | None = None
    expr: ast.expr | None = None
    module_name: str | None = None  # a module, or an attribute of a module that could not be parsed


def _lookup(module_name: str, name: str, depth: int = 0) -> _Found:
    """Follow ``name`` in module ``module_name`` through re-exports to where it is defined."""
    if depth > 20:
        raise NotStatic(f"{module_name}.{name}: too many re-exports")
    module = _parse(module_name)
    if module is None:
        return _Found(None, module_name=f"{module_name}.{name}")
    if name in module.classes:
        return _Found(module, cls=module.classes[name])
    if name in module.values:
        return _Found(module, expr=module.values[name])
    if name in module.functions:
        return _Found(module)
    if name in module.imports:
        source, attr = module.imports[name]
        if attr is None:
            return _Found(None, module_name=source)
        if _module_file(f"{source}.{attr}") is not None and attr not in _names_of(source):
            return _Found(None, module_name=f"{source}.{attr}")  # from package import submodule
        return _lookup(source, attr, depth + 1)
    for source in module.star_imports:
        if name in _names_of(source):
            return _lookup(source, name, depth + 1)
    if _module_file(f"{module_name}.{name}") is not None:
        return _Found(None, module_name=f"{module_name}.{name}")
    raise NotStatic(f"{module_name} defines no {name}")


def _names_of(module_name: str) -> set[str]:
    module = _parse(module_name)
    return set() if module is None else {*module.classes, *module.functions, *module.values, *module.imports}


def _resolve_target(target: str) -> _Found:
    """A dotted ``_target_`` (``recipe.data.DigitsDataModule``) to the class or value it names."""
    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:i])
        if _parse(module_name) is None:
            continue
        found = _lookup(module_name, parts[i])
        for attr in parts[i + 1 :]:  # Outer.Inner
            if found.cls is None:
                raise NotStatic(target)
            inner = next((n for n in found.cls.body if isinstance(n, ast.ClassDef) and n.name == attr), None)
            if inner is None:
                raise NotStatic(target)
            found = _Found(found.module, cls=inner)
        return found
    raise NotStatic(f"{target}: no source found")


def _value(module: _Module, name: str, depth: int, annotation: bool) -> Any:
    """The run-time value of a top-level ``name`` of ``module`` as an annotation or constant sees it: in an
    annotation, a name only a heavy module defines is a stand-in; a constant that needs one is not static."""
    if name in module.imports:
        source, attr = module.imports[name]
        if source in LIGHT_MODULES or source.split(".")[0] in ("typing", "typing_extensions", "collections"):
            imported = importlib.import_module(source)
            return imported if attr is None else getattr(imported, attr)
    found = _lookup(module.name, name, depth)
    if found.expr is not None and found.module is not None and depth < 20:
        return _evaluate(found.module, found.expr, depth + 1, annotation)
    if not annotation:
        raise NotStatic(f"{module.name}.{name}: a class, function or module in a constant")
    if found.cls is not None:
        return _stand_in(f"{found.module.name}.{found.cls.name}" if found.module else found.cls.name)
    return _stand_in(found.module_name or name)


class _ForwardReferences(ast.NodeTransformer):
    """Quoted names in an annotation (``Optional["pl.Accelerator"]``) parsed as the expressions they quote; the
    strings of a ``Literal[...]`` stay strings."""

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        if ast.unparse(node.value).rpartition(".")[2] == "Literal":
            return node
        return self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if not isinstance(node.value, str):
            return node
        try:
            return self.visit(ast.parse(node.value, mode="eval").body)
        except SyntaxError:
            return node


def _evaluate(module: _Module, expr: ast.expr, depth: int = 0, annotation: bool = False) -> Any:
    """Evaluate an annotation or a class constant's expression with the names it uses resolved from ``module``."""
    if annotation:
        expr = _ForwardReferences().visit(copy.deepcopy(expr))
    bound = {n.id for n in ast.walk(expr) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    names = {n.id for n in ast.walk(expr) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound
    namespace: dict[str, Any] = {}
    for name in names:
        if name in module.imports or name in module.values or name in module.classes or name in module.functions:
            try:
                namespace[name] = _value(module, name, depth, annotation)
            except NotStatic:
                if not annotation:
                    raise
                namespace[name] = _stand_in(name)
        elif hasattr(builtins, name):
            namespace[name] = getattr(builtins, name)
        elif annotation:
            namespace[name] = _stand_in(name)
    try:
        return eval(compile(ast.Expression(expr), module.name, "eval"), {"__builtins__": builtins, **namespace})
    except Exception as err:  # an expression that only runs with the real modules
        raise NotStatic(f"{module.name}: {ast.unparse(expr)} ({err})") from None


def _init(cls: ast.ClassDef) -> ast.FunctionDef | None:
    return next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)


def _is_dataclass(cls: ast.ClassDef) -> bool:
    decorators = [d.func if isinstance(d, ast.Call) else d for d in cls.decorator_list]
    return any(ast.unparse(d) in DATACLASS_DECORATORS for d in decorators)


def _bases(module: _Module, cls: ast.ClassDef) -> list[_Found]:
    """The base classes of ``cls``, each with the module defining it."""
    found = []
    for base in cls.bases:
        if isinstance(base, ast.Subscript):  # Generic[T]
            base = base.value
        dotted = ast.unparse(base)
        head, _, rest = dotted.partition(".")
        if module.imports.get(head, ("",))[0] in NO_INIT_MODULES or dotted == "object":
            continue  # ABC, Generic, Protocol: no constructor arguments of their own
        if head in module.classes and not rest:
            found.append(_Found(module, cls=module.classes[head]))
        elif head in module.imports:
            source, attr = module.imports[head]
            found.append(_resolve_target(".".join(p for p in (source, attr, rest) if p)))
        else:
            raise NotStatic(f"{module.name}.{cls.name}: base {dotted}")
    if any(f.cls is None for f in found):
        raise NotStatic(f"{module.name}.{cls.name}: a base outside any readable source")
    return found


def _mro(found: _Found) -> list[_Found]:
    """``found``'s class and its bases, depth first and left to right: Python's MRO where no base is shared."""
    order: list[_Found] = []
    seen: set[tuple[str, str]] = set()

    def visit(f: _Found) -> None:
        key = (f.module.name, f.cls.name)
        if key in seen:
            return
        seen.add(key)
        order.append(f)
        for base in _bases(f.module, f.cls):
            visit(base)

    visit(found)
    return order


def _static_hints(found: _Found) -> tuple[dict[str, Any], bool]:
    hints: dict[str, Any] = {}
    for klass in _mro(found):
        module, cls = klass.module, klass.cls
        init = _init(cls)
        if init is None and _is_dataclass(cls):
            for node in cls.body:
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    hint = _evaluate(module, node.annotation, annotation=True)
                    if typing.get_origin(hint) is not typing.ClassVar and hint is not typing.ClassVar:
                        hints.setdefault(node.target.id, hint)
            return hints, False
        if init is None:
            continue
        args = init.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
            if arg.arg != "self":
                hints.setdefault(
                    arg.arg, Any if arg.annotation is None else _evaluate(module, arg.annotation, annotation=True)
                )
        if args.kwarg is None:
            return hints, False
        if not module.name.startswith(OWN_PACKAGE):  # a library's **kwargs may go anywhere
            return hints, True
    return hints, True


def _runtime_hints(target: str) -> tuple[dict[str, Any], bool]:
    """The same answer from the imported class (the slow path)."""
    from hydra.utils import get_object

    cls = get_object(target)
    hints: dict[str, Any] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        try:
            found = typing.get_type_hints(init)
        except Exception:  # an annotation that does not resolve at run time: that parameter goes unchecked
            found = {}
        for name, param in params.items():
            if name != "self" and param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                hints.setdefault(name, found.get(name, Any))
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            return hints, False
        if not klass.__module__.startswith(OWN_PACKAGE):
            return hints, True
    return hints, True


@functools.cache
def constructor_hints(target: str) -> tuple[dict[str, Any], bool]:
    """The annotated parameters of the constructor ``target`` names, and whether it takes any other key.

    This project's classes pass their ``**kwargs`` to their parent (a data module to ``ArrayDataModule``), so the
    parent's parameters are followed; another library's ``**kwargs`` may go anywhere and take any key.
    Raises ``ImportError`` or ``AttributeError`` when ``target`` names nothing."""
    try:
        found = _resolve_target(target)
        if found.cls is not None:
            return _static_hints(found)
    except NotStatic:
        pass
    return _runtime_hints(target)


def is_class(target: str) -> bool:
    """Whether ``target`` names a class (a function is called later, with arguments not checked here)."""
    try:
        found = _resolve_target(target)
        if found.cls is not None or (found.module is not None and found.expr is None):
            return found.cls is not None  # a class, or a function defined in that module
    except NotStatic:
        pass
    from hydra.utils import get_object

    return isinstance(get_object(target), type)


@functools.cache
def class_constant(target: str, name: str) -> Any:
    """The class attribute ``name`` of the class ``target`` names (``METRICS``), or ``None`` when it has none."""
    try:
        found = _resolve_target(target)
        if found.cls is None:
            return None  # a function (a sampler's builder): no class attributes
        for klass in _mro(found):
            for node in klass.cls.body:
                if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                    return _evaluate(klass.module, node.value)
        return None
    except NotStatic:
        pass
    from hydra.utils import get_object

    return getattr(get_object(target), name, None)
