"""A real local tool: an exact calculator on sympy, safe on untrusted model output.

The expression is parsed with Python's ``ast`` and only numbers, + - * / // % **, unary
signs, parentheses and a short list of math functions are accepted; nothing is ever
``eval``-ed. Exponents and operand sizes are bounded so a model cannot ask for a
computation that never ends (``9**9**9**9``).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from typing import Any

import sympy

MAX_CHARS = 200
MAX_EXPONENT = 1000
MAX_DIGITS = 400

SPEC: dict[str, Any] = {
    "Name": "calculator",
    "function": "Evaluate an arithmetic expression exactly (numbers, + - * / ** %, sqrt, log, exp, sin, cos, tan, pi).",
    "input": {"expression": "string, the expression, e.g. (12.5 * 4) / 3"},
}

_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": sympy.sqrt,
    "log": sympy.log,
    "exp": sympy.exp,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "abs": sympy.Abs,
    "factorial": sympy.factorial,
}
_NAMES = {"pi": sympy.pi, "e": sympy.E}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: sympy.floor(a / b),
    ast.Mod: lambda a, b: a % b,
}


class CalculatorError(ValueError):
    """The expression is not one the calculator accepts; the message says why."""


def _check_size(value: Any) -> Any:
    if value.is_Integer and len(str(abs(int(value)))) > MAX_DIGITS:
        raise CalculatorError(f"result has more than {MAX_DIGITS} digits")
    return value


def _eval(node: ast.AST) -> Any:
    match node:
        case ast.Expression(body=body):
            return _eval(body)
        case ast.Constant(value=bool()):
            raise CalculatorError("booleans are not numbers here")
        case ast.Constant(value=int() | float() as v):
            return sympy.Rational(str(v)) if isinstance(v, float) else sympy.Integer(v)
        case ast.UnaryOp(op=ast.USub(), operand=x):
            return -_eval(x)
        case ast.UnaryOp(op=ast.UAdd(), operand=x):
            return _eval(x)
        case ast.BinOp(left=a, op=ast.Pow(), right=b):
            base, exponent = _eval(a), _eval(b)
            if not exponent.is_number or abs(exponent) > MAX_EXPONENT:
                raise CalculatorError(f"exponent {exponent} is out of range (|e| <= {MAX_EXPONENT})")
            return _check_size(base**exponent)
        case ast.BinOp(left=a, op=op, right=b) if type(op) in _BINARY:
            return _check_size(_BINARY[type(op)](_eval(a), _eval(b)))
        case ast.Name(id=name) if name in _NAMES:
            return _NAMES[name]
        case ast.Call(func=ast.Name(id=name), args=args, keywords=[]) if name in _FUNCTIONS:
            values = [_eval(a) for a in args]
            if name == "factorial" and (not values or abs(values[0]) > 300):
                raise CalculatorError("factorial argument out of range (<= 300)")
            return _FUNCTIONS[name](*values)
    raise CalculatorError(f"unsupported element {type(node).__name__!s} in the expression")


def calculate(expression: str) -> str:
    """The exact value of ``expression`` and, when it is not an integer, a 12-digit decimal."""
    text = expression.strip().replace("^", "**")
    if not text or len(text) > MAX_CHARS:
        raise CalculatorError(f"expression must have 1..{MAX_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CalculatorError(f"cannot parse {expression!r}") from None
    try:
        value = _eval(tree)
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    if value.has(sympy.zoo, sympy.nan):
        raise CalculatorError("division by zero")
    if value.is_Integer:
        return str(value)
    return f"{value} ≈ {sympy.N(value, 12)}"


def run(action_input: str) -> str:
    """The tool as the agent calls it: ``{"expression": "..."}`` in, a JSON result out."""
    try:
        args = json.loads(action_input)
    except ValueError:
        raise CalculatorError('arguments must be a JSON object like {"expression": "1+1"}') from None
    if not isinstance(args, dict) or not isinstance(args.get("expression"), str):
        raise CalculatorError("arguments must be a JSON object with a string 'expression'")
    return json.dumps({"result": calculate(args["expression"])}, ensure_ascii=False)
