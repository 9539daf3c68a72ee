"""MSG-Net (Multi-style Generative Network) style transfer.

Subpackages, each one concern: :mod:`msgnet.model` (the network and its weights files),
:mod:`msgnet.imageio` (robust decoding and encoding), :mod:`msgnet.inference` (batched and tiled
stylization, the style controls), :mod:`msgnet.animation` (clips), :mod:`msgnet.learning`
(learning a style, the style store) and :mod:`msgnet.training` (training and evaluation, which
the server does not ship); :mod:`msgnet.cli` is ``python -m msgnet``. Importing the package itself
is cheap: nothing heavy is imported here.
"""
