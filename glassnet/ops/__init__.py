"""The primitive ops: one small Function subclass each, forward and backward side by side.

Everything else in glassnet (layers, losses, optimizers' helpers) composes these.
"""

from glassnet.ops.activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from glassnet.ops.elementwise import (
    Abs,
    Add,
    AddScalar,
    Cast,
    Clamp,
    Clone,
    Div,
    Exp,
    Log,
    Maximum,
    Minimum,
    Mul,
    MulScalar,
    Neg,
    Pow,
    PowScalar,
    RDivScalar,
    RPowScalar,
    RSubScalar,
    Sqrt,
    Sub,
    Where,
)
from glassnet.ops.linalg import Linear, MatMul
from glassnet.ops.reduce import MaxAll, MaxDim, Mean, Sum, Var
from glassnet.ops.shape import Cat, Expand, GetItem, Pad, Permute, Reshape, Stack

__all__ = [
    "Abs", "Add", "AddScalar", "Cast", "Cat", "Clamp", "Clone", "Div", "Exp", "Expand", "GELU",
    "GetItem", "LeakyReLU", "Linear", "Log", "LogSoftmax", "MatMul", "MaxAll", "MaxDim", "Maximum",
    "Mean", "Minimum", "Mul", "MulScalar", "Neg", "Pad", "Permute", "Pow", "PowScalar", "RDivScalar",
    "RPowScalar", "RSubScalar", "ReLU", "Reshape", "Sigmoid", "Softmax", "Sqrt", "Stack", "Sub", "Sum",
    "Tanh", "Var", "Where",
]  # fmt: skip
