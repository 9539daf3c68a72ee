"""Stylizing images: :mod:`~msgnet.inference.stylize` (``Stylizer``, batching, presets), the fast
CPU path (:mod:`~msgnet.inference.fast`, :mod:`~msgnet.inference.winograd`), tiling, variants,
the style controls (:mod:`~msgnet.inference.control_values` without torch,
:mod:`~msgnet.inference.controls` the maths) and contact sheets."""
