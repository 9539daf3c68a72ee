"""The network and its weights: :mod:`~msgnet.model.net` (MSG-Net), :mod:`~msgnet.model.targets`
(style targets, with or without the decoder affine), :mod:`~msgnet.model.checkpoint` (weights
files, ours and the authors') and :mod:`~msgnet.model.download` (the authors' file)."""
