"""Safe, precompiled guard and action expressions.

Machine files contain small Python expressions (``retries < 3``,
``In('paid') and len(items) > 0``, ``event.data['price'] * qty``).  They are
checked against an allow-list and compiled exactly once, at load time, into a
plain Python function ``evaluate(data, event, in_state, system)``.  Every
identifier is resolved at *compile* time by rewriting the AST, so evaluating an
expression costs one function call plus the operations it contains: no
namespace dict is built per call, and no name is looked up by string at run
time except the data keys themselves.

The allow-list is the security boundary.  Machine files may come from people
who must not be able to run arbitrary code in the host process, so anything
not explicitly allowed (other calls, underscore names, ``str.format``,
interpreter-internal attributes such as ``gi_frame``) is refused with an error
that points at the offending text.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NoReturn

import attrs

from .limits import GUARDS, MAX_FOR_CLAUSES, guarded_sum

__all__ = [
    "RESERVED_NAMES",
    "SAFE_BUILTINS",
    "Expression",
    "ExpressionSyntaxError",
    "compile_expression",
]


SAFE_BUILTINS: dict[str, Callable[..., Any]] = {
    "len": len,
    "min": min,
    "max": max,
    "sum": sum,
    "abs": abs,
    "round": round,
    "any": any,
    "all": all,
    "sorted": sorted,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
}

RESERVED_NAMES: frozenset[str] = frozenset(
    {"event", "_event", "In", "_sessionid", "_name", "_ioprocessors"}
)

# Methods that only read the value they are called on.  Mutating methods
# (pop, update, append, ...) would let a guard change state behind the
# interpreter's back, and ``format``/``format_map`` can walk attributes.
_ALLOWED_METHODS: tuple[str, ...] = (
    "get",
    "keys",
    "values",
    "items",
    "lower",
    "upper",
    "strip",
    "lstrip",
    "rstrip",
    "startswith",
    "endswith",
    "split",
    "join",
    "count",
    "index",
    "replace",
)
_ALLOWED_METHOD_SET: frozenset[str] = frozenset(_ALLOWED_METHODS)

# Format strings can read arbitrary attributes ("{0.__class__}"), which would
# defeat the underscore rule, so these are refused even when not called.
_FORMAT_METHODS: frozenset[str] = frozenset({"format", "format_map"})

# Non-underscore attributes that lead from a generator/frame/code object back
# into the interpreter (``(x for x in y).gi_frame.f_back.f_globals``).  With
# those the allow-list could be bypassed, so the whole families are refused.
_INTERNAL_ATTRIBUTE_PREFIXES: tuple[str, ...] = ("gi_", "ag_", "cr_", "f_", "tb_", "co_", "func_")

_EVENT_NAMES: frozenset[str] = frozenset({"event", "_event"})
_SYSTEM_NAMES: frozenset[str] = frozenset({"_sessionid", "_name", "_ioprocessors"})
_ALLOWED_CONSTANT_TYPES: tuple[type, ...] = (bool, int, float, complex, str, type(None))

# Names of the generated function's parameters and helpers.  They all start
# with "_", which user expressions may not use (reserved names aside), so they
# can never collide with a name written in a machine file.
_DATA = "_d"
_EVENT = "_e"
_IN = "_in"
_SYSTEM = "_sys"
_FUNCTION_NAME = "_expression"

# The try/except costs nothing on the success path (zero-cost exceptions since
# CPython 3.11); measured ~25 ns per data name cheaper than calling a lookup
# helper per name.  ``_NAMES`` is replaced by a tuple constant.
_WRAPPER_TEMPLATE = f"""\
def {_FUNCTION_NAME}({_DATA}, {_EVENT}, {_IN}, {_SYSTEM}):
    try:
        return None
    except _KeyError as _exc:
        _raise_if_missing(_exc, {_DATA}, _NAMES)
        raise
"""

_NEWLINE = re.compile(r"\r\n|\r|\n")
_MAX_SNIPPET = 60


class ExpressionSyntaxError(Exception):
    """An expression that cannot be compiled.

    Raised at load time, so a broken or unsafe machine file is rejected before
    any instance runs.  ``offset`` is a 0-based character offset into
    ``source`` so callers can point a caret at the problem inside the YAML
    value.
    """

    def __init__(self, message: str, offset: int = 0, source: str = "") -> None:
        # All three go into args so the exception survives pickling (e.g. when
        # raised in a worker process).
        super().__init__(message, offset, source)
        self.message: str = message
        self.offset: int = offset
        self.source: str = source

    def __str__(self) -> str:
        return self.message


@attrs.frozen
class Expression:
    """A compiled expression.

    ``evaluate`` is excluded from equality so that two compilations of the
    same text compare (and hash) equal; it is fully determined by ``source``.
    """

    source: str
    evaluate: Callable[[dict, object, Callable[[str], bool], dict], Any] = attrs.field(
        eq=False, repr=False
    )
    names: frozenset[str] = frozenset()


#: How many distinct (text, machine) compilations are kept: machines repeat their guards and
#: assignments (``count < 3`` on every retry state), and a chart of thousands of states would
#: otherwise parse, check and compile each occurrence again. Bounded, as texts come from data.
COMPILED_CACHE_SIZE = 4096


def compile_expression(source: str, *, machine_name: str = "") -> Expression:
    """Check ``source`` against the allow-list and compile it once.

    ``machine_name`` only labels the code object (it shows up in tracebacks
    raised while evaluating), so that a failing guard can be traced back to
    its machine file. The same text for the same machine returns the same
    :class:`Expression` (it is immutable and its function pure); a text that
    fails raises anew each time.
    """
    return _compile_cached(source, machine_name)


@functools.lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _compile_cached(source: str, machine_name: str) -> Expression:
    if not source.strip():
        raise ExpressionSyntaxError("empty expression", 0, source)
    # compile() in "eval" mode rejects leading indentation, but YAML values
    # often carry some; parse the stripped text and shift offsets back.
    text = source.lstrip(" \t\r\n\f")
    lead = len(source) - len(text)
    locator = _Locator(source, text, lead)

    if "\0" in source:
        # Python's own report of this has a meaningless position.
        raise ExpressionSyntaxError(
            "invalid expression syntax: the text contains a NUL character", source.index("\0"), source
        )

    filename = f"<expression in {machine_name}>" if machine_name else "<expression>"
    try:
        tree = ast.parse(text, mode="eval")
        rewriter = _Rewriter(locator)
        body = rewriter.rewrite(tree.body)
        evaluate = _build_function(body, rewriter.names, filename)
    except SyntaxError as exc:
        raise locator.syntax_error(exc) from None
    except (RecursionError, MemoryError):
        # The parser, the rewriter and compile() all recurse over the tree.
        raise ExpressionSyntaxError("expression is too deeply nested", 0, source) from None
    return Expression(source=source, evaluate=evaluate, names=frozenset(rewriter.names))


def _raise_if_missing(exc: KeyError, data: Mapping[str, Any], names: tuple[str, ...]) -> None:
    """Turn a KeyError from a data lookup into the NameError users expect.

    Called only on the failure path, so the check can afford to be careful:
    a KeyError raised by ``event.data['k']`` must stay a KeyError, so only a
    key that the expression reads as a data name *and* that is absent from
    ``data`` is converted.
    """
    key = exc.args[0] if len(exc.args) == 1 else None
    if isinstance(key, str) and key in names and key not in data:
        raise NameError(f"name {key!r} is not defined", name=key) from None


def _build_function(
    body: ast.expr, names: Iterable[str], filename: str
) -> Callable[[dict, object, Callable[[str], bool], dict], Any]:
    """Wrap the rewritten body in a ``def`` and compile it.

    Without data names no KeyError can mean "missing name", so the plain
    ``return body`` form is used and a KeyError from e.g. ``event.data`` stays
    what it is.
    """
    module = _wrapper_module(body, tuple(sorted(names)))
    code = compile(module, filename, "exec")
    namespace: dict[str, Any] = {
        "__builtins__": {},
        **SAFE_BUILTINS,
        "sum": guarded_sum,
        **GUARDS,
        "_KeyError": KeyError,
        "_raise_if_missing": _raise_if_missing,
    }
    exec(code, namespace)  # noqa: S102 - the AST was checked against the allow-list
    return namespace.pop(_FUNCTION_NAME)


def _wrapper_module(body: ast.expr, name_tuple: tuple[str, ...]) -> ast.Module:
    """The AST of :data:`_WRAPPER_TEMPLATE` around ``body``, built directly.

    Building the few nodes costs far less than parsing the template for every expression,
    which dominated compiling a long ``script`` (one expression per statement).
    """

    def at(node: Any) -> Any:  # fix_missing_locations walks the whole body: slower than the rest together
        node.lineno, node.col_offset, node.end_lineno, node.end_col_offset = 1, 0, 1, 0
        return node

    def load(name: str) -> ast.Name:
        return at(ast.Name(id=name, ctx=ast.Load()))

    statements: list[ast.stmt]
    if name_tuple:
        report = at(ast.Call(func=load("_raise_if_missing"),
                             args=[load("_exc"), load(_DATA), at(ast.Constant(value=name_tuple))], keywords=[]))
        handler = at(ast.ExceptHandler(type=load("_KeyError"), name="_exc",
                                       body=[at(ast.Expr(value=report)), at(ast.Raise())]))
        statements = [at(ast.Try(body=[at(ast.Return(value=body))], handlers=[handler], orelse=[], finalbody=[]))]
    else:
        statements = [at(ast.Return(value=body))]
    arguments = ast.arguments(posonlyargs=[], kwonlyargs=[], kw_defaults=[], defaults=[],
                              args=[at(ast.arg(arg=name)) for name in (_DATA, _EVENT, _IN, _SYSTEM)])
    extra: dict[str, Any] = {"type_params": []} if "type_params" in ast.FunctionDef._fields else {}
    function = at(ast.FunctionDef(name=_FUNCTION_NAME, args=arguments, body=statements, decorator_list=[],
                                  returns=None, **extra))
    return ast.Module(body=[function], type_ignores=[])


class _Locator:
    """Maps parser positions (line + UTF-8 byte column) to character offsets.

    Users see the YAML text, not bytes, so a caret must land on the right
    character even after non-ASCII string literals.
    """

    def __init__(self, source: str, text: str, lead: int) -> None:
        self.source = source
        self.text = text
        self._lead = lead
        self._lines: list[str] = []
        self._starts: list[int] = []
        position = 0
        for match in _NEWLINE.finditer(text):
            self._lines.append(text[position : match.start()])
            self._starts.append(position)
            position = match.end()
        self._lines.append(text[position:])
        self._starts.append(position)

    def from_node(self, lineno: int, col_offset: int) -> int:
        """Offset of an AST position (``col_offset`` counts UTF-8 bytes)."""
        index = min(max(lineno, 1), len(self._lines)) - 1
        encoded = self._lines[index].encode("utf-8")
        column = len(encoded[: max(col_offset, 0)].decode("utf-8", errors="ignore"))
        return self._lead + self._starts[index] + column

    def from_syntax_error(self, lineno: int | None, offset: int | None) -> int:
        """Offset of a SyntaxError position (1-based, counted in characters).

        Python reports offset 0 for errors at the end of the input ("a +"), so
        those point at the end of the line.
        """
        index = min(max(lineno or 1, 1), len(self._lines)) - 1
        line = self._lines[index]
        column = len(line) if not offset or offset < 1 else min(offset - 1, len(line))
        return self._lead + self._starts[index] + column

    def syntax_error(self, exc: SyntaxError) -> ExpressionSyntaxError:
        return ExpressionSyntaxError(
            f"invalid expression syntax: {exc.msg}",
            self.from_syntax_error(exc.lineno, exc.offset),
            self.source,
        )

    def snippet(self, node: ast.AST) -> str:
        """The source text of ``node``, shortened so messages stay one line."""
        segment = ast.get_source_segment(self.text, node)
        if segment is None:
            segment = ast.unparse(node)
        segment = " ".join(segment.split())
        if len(segment) > _MAX_SNIPPET:
            segment = segment[: _MAX_SNIPPET - 3] + "..."
        return segment


def _target_names(target: ast.expr) -> Iterator[ast.expr]:
    """Yield the Name nodes bound by a comprehension target, or the first
    node that is not a plain name (so the caller can refuse it)."""
    if isinstance(target, ast.Name):
        yield target
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _target_names(element)
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value)
    else:
        yield target


def _is_number(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float, complex)


class _Rewriter(ast.NodeTransformer):
    """Validates the tree against the allow-list and resolves every name.

    Validation and rewriting happen in one pass because both need the same
    scoping information: a comprehension variable is neither a data lookup nor
    something to refuse.
    """

    # Nodes that are safe as such; their children are still visited.
    _PLAIN_NODES: tuple[type[ast.AST], ...] = (
        ast.BoolOp,
        ast.BinOp,
        ast.UnaryOp,
        ast.Compare,
        ast.IfExp,
        ast.Subscript,
        ast.Slice,
        ast.Tuple,
        ast.List,
        ast.Set,
        ast.Dict,
        ast.Starred,
        ast.JoinedStr,
        ast.FormattedValue,
        ast.boolop,
        ast.operator,
        ast.unaryop,
        ast.cmpop,
        ast.expr_context,
    )

    def __init__(self, locator: _Locator) -> None:
        self._locator = locator
        self._scopes: list[frozenset[str]] = []
        self.names: set[str] = set()
        self._for_clauses = 0

    def rewrite(self, body: ast.expr) -> ast.expr:
        result = self.visit(body)
        assert isinstance(result, ast.expr)
        return result

    # -- errors ---------------------------------------------------------

    def _refuse(self, message: str, node: ast.AST, *, at: int | None = None) -> NoReturn:
        offset = at
        if offset is None:
            offset = self._locator.from_node(getattr(node, "lineno", 1), getattr(node, "col_offset", 0))
        raise ExpressionSyntaxError(message, offset, self._locator.source)

    def _attribute_offset(self, node: ast.Attribute) -> int:
        """Offset of the attribute name itself: ``x._secret`` points at ``_secret``.

        The name is always the last token of the node, so it ends at
        ``end_col_offset``.
        """
        end_line = node.end_lineno or node.lineno
        end_col = node.end_col_offset if node.end_col_offset is not None else node.col_offset
        return self._locator.from_node(end_line, end_col - len(node.attr.encode("utf-8")))

    def _check_attribute_name(self, node: ast.Attribute) -> None:
        attr = node.attr
        if attr.startswith("_"):
            self._refuse(
                f"`{attr}`: names starting with `_` are not allowed",
                node,
                at=self._attribute_offset(node),
            )
        if attr in _FORMAT_METHODS:
            self._refuse(
                f"`.{attr}` is not allowed (format strings can read arbitrary attributes); "
                "use an f-string instead",
                node,
                at=self._attribute_offset(node),
            )
        if attr.startswith(_INTERNAL_ATTRIBUTE_PREFIXES):
            prefixes = ", ".join(_INTERNAL_ATTRIBUTE_PREFIXES)
            self._refuse(
                f"`{attr}`: attributes starting with {prefixes} expose interpreter "
                "internals and are not allowed",
                node,
                at=self._attribute_offset(node),
            )

    # -- dispatch -------------------------------------------------------

    def visit(self, node: ast.AST) -> ast.AST:
        visitor = getattr(self, "visit_" + type(node).__name__, None)
        if visitor is not None:
            return visitor(node)
        if isinstance(node, self._PLAIN_NODES):
            return self.generic_visit(node)
        self._refuse(
            f"`{self._locator.snippet(node)}` is not allowed in an expression "
            f"({type(node).__name__} is not supported)",
            node,
        )

    # -- leaves ---------------------------------------------------------

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, bytes):
            self._refuse(
                f"bytes literal `{self._locator.snippet(node)}` is not allowed; use a str literal",
                node,
            )
        if not isinstance(node.value, _ALLOWED_CONSTANT_TYPES):
            self._refuse(f"`{self._locator.snippet(node)}` is not allowed in an expression", node)
        return node

    def _check_underscore_name(self, node: ast.Name) -> None:
        if node.id.startswith("_") and node.id not in RESERVED_NAMES:
            allowed = ", ".join(sorted(n for n in RESERVED_NAMES if n.startswith("_")))
            self._refuse(
                f"`{node.id}`: names starting with `_` are not allowed (except {allowed})", node
            )

    def visit_Name(self, node: ast.Name) -> ast.AST:
        name = node.id
        self._check_underscore_name(node)
        if any(name in scope for scope in self._scopes):
            return node
        if name in _EVENT_NAMES:
            return ast.copy_location(ast.Name(id=_EVENT, ctx=ast.Load()), node)
        if name == "In":
            return ast.copy_location(ast.Name(id=_IN, ctx=ast.Load()), node)
        if name in _SYSTEM_NAMES:
            return self._lookup(_SYSTEM, node)
        if name in SAFE_BUILTINS:
            return node
        self.names.add(name)
        return self._lookup(_DATA, node)

    @staticmethod
    def _lookup(container: str, node: ast.Name) -> ast.expr:
        """``container['name']``, positioned where the name was written so
        tracebacks still point into the user's text."""
        return ast.copy_location(
            ast.Subscript(
                value=ast.copy_location(ast.Name(id=container, ctx=ast.Load()), node),
                slice=ast.copy_location(ast.Constant(value=node.id), node),
                ctx=ast.Load(),
            ),
            node,
        )

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self._check_attribute_name(node)
        node.value = self.visit(node.value)
        return node

    # -- bounded operations ----------------------------------------------
    # Only the operators whose result can be vastly larger than their operands go through a
    # guard (limits.py); +, -, comparisons and the rest stay plain bytecode.

    _GUARDED_OPERATORS: dict[type[ast.operator], str] = {
        ast.Pow: "_pow", ast.Mult: "_mul", ast.LShift: "_lshift", ast.Mod: "_mod",
    }

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node.left = self.visit(node.left)
        node.right = self.visit(node.right)
        guard = self._GUARDED_OPERATORS.get(type(node.op))
        if guard is None or (_is_number(node.left) and _is_number(node.right) and guard == "_mod"):
            return node
        if guard == "_mod" and _is_number(node.left):
            return node  # `7 % n` cannot be printf formatting
        return self._guard_call(guard, [node.left, node.right], node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        node.value = self.visit(node.value)
        if node.format_spec is None:
            return node
        spec = self.visit(node.format_spec)
        call = self._guard_call("_format", [node.value, ast.copy_location(ast.Constant(node.conversion), node),
                                            spec], node)
        return ast.copy_location(ast.FormattedValue(value=call, conversion=-1, format_spec=None), node)

    @staticmethod
    def _guard_call(name: str, arguments: list[ast.expr], node: ast.AST) -> ast.expr:
        function = ast.copy_location(ast.Name(id=name, ctx=ast.Load()), node)
        return ast.copy_location(ast.Call(func=function, args=arguments, keywords=[]), node)

    # -- calls ----------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> ast.AST:
        func = node.func
        if isinstance(func, ast.Name):
            self._check_called_name(func)
            node.func = self.visit(func)
        elif isinstance(func, ast.Attribute):
            self._check_attribute_name(func)
            if func.attr not in _ALLOWED_METHOD_SET:
                self._refuse(
                    f"call of method `.{func.attr}()` is not allowed; expressions may call "
                    f"the methods {', '.join(_ALLOWED_METHODS)}",
                    func,
                    at=self._attribute_offset(func),
                )
            func.value = self.visit(func.value)
            if func.attr in ("join", "replace") and not node.keywords:
                # The two methods whose result can be far longer than their inputs.
                arguments = [func.value, *(self.visit(argument) for argument in node.args)]
                return self._guard_call(f"_{func.attr}", arguments, node)
        else:
            self._refuse(
                f"calling `{self._locator.snippet(func)}` is not allowed; only "
                f"{', '.join(SAFE_BUILTINS)}, In() and the methods "
                f"{', '.join(_ALLOWED_METHODS)} may be called",
                func,
            )
        node.args = [self.visit(argument) for argument in node.args]
        seen: set[str] = set()
        for keyword in node.keywords:
            self._check_keyword(keyword, seen)
            keyword.value = self.visit(keyword.value)
        return node

    def _check_called_name(self, func: ast.Name) -> None:
        name = func.id
        self._check_underscore_name(func)
        local = any(name in scope for scope in self._scopes)
        if local or not (name in SAFE_BUILTINS or name == "In"):
            self._refuse(
                f"call of `{name}` is not allowed; expressions may call "
                f"{', '.join(SAFE_BUILTINS)} and In()",
                func,
            )

    def _check_keyword(self, keyword: ast.keyword, seen: set[str]) -> None:
        if keyword.arg is None:
            self._refuse(
                f"`{self._locator.snippet(keyword)}`: `**` argument unpacking is not allowed in a call",
                keyword,
            )
        if keyword.arg in seen:
            self._refuse(f"keyword argument `{keyword.arg}` is repeated", keyword)
        seen.add(keyword.arg)
        if keyword.arg == "key":
            # sorted/min/max call their key; only known-safe functions may be
            # handed over, otherwise any reachable callable could be invoked.
            value = keyword.value
            if not (
                isinstance(value, ast.Name)
                and value.id in SAFE_BUILTINS
                and not any(value.id in scope for scope in self._scopes)
            ):
                self._refuse(
                    f"`{self._locator.snippet(keyword)}` is not allowed; key= must name one of "
                    f"{', '.join(SAFE_BUILTINS)}",
                    keyword,
                )

    # -- comprehensions -------------------------------------------------

    def visit_ListComp(self, node: ast.ListComp) -> ast.AST:
        return self._visit_comprehension(node, ("elt",))

    def visit_SetComp(self, node: ast.SetComp) -> ast.AST:
        return self._visit_comprehension(node, ("elt",))

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> ast.AST:
        return self._visit_comprehension(node, ("elt",))

    def visit_DictComp(self, node: ast.DictComp) -> ast.AST:
        return self._visit_comprehension(node, ("key", "value"))

    def _visit_comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp, fields: tuple[str, ...]
    ) -> ast.AST:
        """Resolve names with Python's own comprehension scoping.

        Every loop variable of the comprehension is local to all of it except
        the first iterable, which is evaluated in the enclosing scope.  Using
        the same rule means the rewritten code behaves exactly like Python
        (including the UnboundLocalError for a variable used before its
        ``for``).
        """
        self._for_clauses += len(node.generators)
        if self._for_clauses > MAX_FOR_CLAUSES:
            self._refuse(f"too many `for` clauses: an expression may have at most {MAX_FOR_CLAUSES} over all "
                         "its comprehensions", node)
        bound: set[str] = set()
        for generator in node.generators:
            if generator.is_async:
                self._refuse(
                    f"`async for` is not allowed in a comprehension: `{self._locator.snippet(node)}`",
                    node,
                )
            bound.update(self._bind_target(generator.target))
        first = node.generators[0]
        first.iter = self._guard_call("_iter", [self.visit(first.iter)], first.iter)
        self._scopes.append(frozenset(bound))
        try:
            for index, generator in enumerate(node.generators):
                if index:
                    generator.iter = self._guard_call("_iter", [self.visit(generator.iter)], generator.iter)
                generator.ifs = [self.visit(condition) for condition in generator.ifs]
            for field in fields:
                setattr(node, field, self.visit(getattr(node, field)))
        finally:
            self._scopes.pop()
        return node

    def _bind_target(self, target: ast.expr) -> set[str]:
        names: set[str] = set()
        for item in _target_names(target):
            if not isinstance(item, ast.Name):
                self._refuse(
                    f"`{self._locator.snippet(item)}` cannot be a comprehension variable; "
                    "loop variables must be plain names",
                    item,
                )
            name = item.id
            if name in RESERVED_NAMES:
                self._refuse(
                    f"`{name}` is a reserved name and cannot be used as a comprehension variable",
                    item,
                )
            if name.startswith("_"):
                self._refuse(f"`{name}`: names starting with `_` are not allowed", item)
            if name in SAFE_BUILTINS:
                self._refuse(
                    f"`{name}` is a built-in function and cannot be used as a comprehension variable",
                    item,
                )
            names.add(name)
        return names

    # -- explicitly refused constructs ------------------------------------

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        self._refuse(f"lambda is not allowed in an expression: `{self._locator.snippet(node)}`", node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> ast.AST:
        self._refuse(
            f"assignment `{self._locator.snippet(node)}` is not allowed; an expression cannot "
            "change data (use `==` to compare)",
            node,
        )

    def visit_Await(self, node: ast.Await) -> ast.AST:
        self._refuse(f"`await` is not allowed in an expression: `{self._locator.snippet(node)}`", node)

    def visit_Yield(self, node: ast.Yield) -> ast.AST:
        self._refuse(f"`yield` is not allowed in an expression: `{self._locator.snippet(node)}`", node)

    def visit_YieldFrom(self, node: ast.YieldFrom) -> ast.AST:
        self._refuse(f"`yield from` is not allowed in an expression: `{self._locator.snippet(node)}`", node)
