"""Image decoding that survives real files, and the tensor conversions the model needs.

Uploads come from phones, scanners and chat apps: EXIF-rotated JPEGs, CMYK JPEGs, PNGs with
alpha or 16-bit samples, palette GIFs with transparency, animated GIF/WebP, and sometimes not an
image at all (a PDF, a HEIC photo, a truncated upload). :func:`decode_image` turns every one of
them into an 8-bit RGB :class:`PIL.Image.Image` or raises an :class:`ImageError` whose ``code``
and ``http_status`` a server can answer with and whose message a person can act on.

The package's API is re-exported here; each job has its module: :mod:`~msgnet.imageio.errors`
(the errors and their messages), :mod:`~msgnet.imageio.decode` (bytes and files to RGB images,
limits, HEIC), :mod:`~msgnet.imageio.convert` (pixel modes, tensors),
:mod:`~msgnet.imageio.resize` and :mod:`~msgnet.imageio.encode` (JPEG/PNG).
"""

from msgnet.imageio.convert import bgr_to_image, image_to_bgr, to_rgb
from msgnet.imageio.decode import (
    ALLOWED_FORMATS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    EXIF_ORIENTATION,
    IMAGE_SUFFIXES,
    decode_image,
    list_images,
    load_image,
    readable_formats,
    register_heif,
    sniff_image_format,
)
from msgnet.imageio.encode import JPEG_TYPE, PNG_TYPE, encode_image
from msgnet.imageio.errors import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    describe_non_image,
)
from msgnet.imageio.resize import fit_longest, resize_longest

__all__ = [
    "ALLOWED_FORMATS", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS", "EXIF_ORIENTATION",
    "IMAGE_SUFFIXES", "JPEG_TYPE", "PNG_TYPE", "CorruptImageError", "ImageError",
    "ImageTooLargeError", "NotAnImageError", "bgr_to_image", "decode_image", "describe_non_image",
    "encode_image", "fit_longest", "image_to_bgr", "list_images", "load_image",
    "readable_formats", "register_heif", "resize_longest", "sniff_image_format", "to_rgb",
]
