"""MSG-Net (Multi-style Generative Network) style transfer.

Modules: :mod:`msgnet.model` (the network), :mod:`msgnet.checkpoint` (weights files, ours and the
authors'), :mod:`msgnet.imageio` (robust decoding), :mod:`msgnet.stylize` (batched inference),
:mod:`msgnet.download`, :mod:`msgnet.cli` (``python -m msgnet``), training and evaluation.
Importing the package itself is cheap: nothing heavy is imported here.
"""
