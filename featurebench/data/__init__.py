"""Data sources (what images, with which labels), robust decoding, and the batching pipeline.
A bottom room: imports only :mod:`featurebench.errors`."""

import os as _os

# OpenCV (the decoder's fallback for formats Pillow cannot identify, e.g. Radiance HDR)
# checks an image's size against this limit *before* allocating it, but reads it only
# once, when cv2 is first imported. Its default (2**30 pixels) lets a 12 MB file
# allocate several GB; align it with the decoder's own limit (Pillow's). An explicit
# environment setting wins.
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", "178956970")
