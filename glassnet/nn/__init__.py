"""glassnet.nn: Module, Parameter, layers, activations, losses, init and functional (PyTorch's names)."""

from glassnet.nn import functional, init, utils
from glassnet.nn.activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Tanh
from glassnet.nn.container import ModuleDict, ModuleList, Sequential
from glassnet.nn.conv import Conv2d
from glassnet.nn.dropout import Dropout
from glassnet.nn.linear import Flatten, Identity, Linear, Unflatten
from glassnet.nn.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from glassnet.nn.module import Module, Parameter, RemovableHandle
from glassnet.nn.normalization import BatchNorm1d, BatchNorm2d
from glassnet.nn.pooling import AvgPool2d, MaxPool2d
