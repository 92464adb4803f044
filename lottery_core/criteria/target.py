"""What an activation criterion reads of a block y = relu(x + f(x)) (or x + f(x)): the `target` option.

    "branch"  f(x), the residual branch before the addition: the output of the module that ends
              it (`surgery.last_bn`); a silenced block (that BN's γ = β = 0) reads exactly 0.
    "output"  y, the block's output: the residual stream, nearly its input. The paper's literal
              reading; a silenced block reads the same as the block before it.

Declared once here (torch-free) and listed in the `OPTIONS` of hrank, expectabs and pls.
"""
from lottery_core.options import Option

TARGETS = ("branch", "output")
TARGET = Option("target", str, "branch", "activation criteria (hrank, expectabs, pls) read the block's residual "
                "branch f(x) (branch) or its output relu(x + f(x)) (output: the paper's literal reading, blind "
                "to what a block adds)", choices=TARGETS)
