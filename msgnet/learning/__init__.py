"""Learning a style from one picture, a serving feature (``handler/learning.py``):
:mod:`~msgnet.learning.learn` (the fit), :mod:`~msgnet.learning.vgg` (the VGG16 loss network it
fits on, which training uses too), :mod:`~msgnet.learning.style_store` (where learned styles
live) and :mod:`~msgnet.learning.cli` (``python -m msgnet learn`` / ``forget``)."""
