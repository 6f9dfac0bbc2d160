"""A tiny numpy-only animated GIF (GIF89a) writer, for `rllib evaluate --render`.

No Pillow/imageio here. Two simplifications keep it short and fast:

* Colours: every frame is quantized to one fixed palette, the 6x6x6 colour
  cube (216 web-safe colours, padded to 256 entries), so there is a single
  global colour table and quantizing is one vectorised expression.
* LZW: the stream only ever emits literal codes (one per pixel) and a CLEAR
  code often enough that the decoder's string table never grows past
  2**9 entries. The code width thus stays fixed at 9 bits and the bit packing
  is a numpy reshape. Any conforming decoder reads this (the decoder still
  builds its table, we just never use it); the price is no compression:
  about 9 bits per pixel, so frames are downscaled by 2 by default.
"""

from __future__ import annotations

import os
import struct
from typing import Iterable, Union

import numpy as np

# The 6x6x6 colour cube: index = 36 r + 6 g + b, each level in {0, 51, ..., 255}.
_LEVELS = np.arange(6, dtype=np.uint16) * 51
PALETTE = np.zeros((256, 3), dtype=np.uint8)
PALETTE[:216] = np.stack(np.meshgrid(_LEVELS, _LEVELS, _LEVELS, indexing="ij"), -1).reshape(-1, 3)

_MIN_CODE_SIZE = 8  # literal codes 0..255
_CLEAR = 1 << _MIN_CODE_SIZE  # 256
_EOI = _CLEAR + 1  # 257
_CODE_WIDTH = _MIN_CODE_SIZE + 1  # 9 bits
# After a CLEAR the decoder's next free code is 258 and each code after the
# first adds one entry; it would widen codes when that reaches 512. Emitting a
# CLEAR after this many literals keeps it at <= 510 (one entry of margin).
_LITERALS_PER_CLEAR = (1 << _CODE_WIDTH) - _EOI - 2  # 253


def quantize(frame: np.ndarray) -> np.ndarray:
    """RGB(A) uint8 frame (H, W, 3|4) -> palette indices (H, W) uint8 (6x6x6 cube)."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise ValueError(f"expected an RGB frame of shape (H, W, 3), got shape {frame.shape}")
    levels = (frame[..., :3].astype(np.uint16) * 5 + 127) // 255  # nearest of 6 levels
    return (levels[..., 0] * 36 + levels[..., 1] * 6 + levels[..., 2]).astype(np.uint8)


def downscale(frame: np.ndarray, factor: int) -> np.ndarray:
    """Average factor x factor pixel blocks (crops the edge rows/columns that do not fit)."""
    if factor <= 1:
        return np.asarray(frame)
    h, w = frame.shape[0] // factor * factor, frame.shape[1] // factor * factor
    if h == 0 or w == 0:
        raise ValueError(f"frame of shape {frame.shape} is smaller than the downscale {factor}")
    blocks = np.asarray(frame[:h, :w], dtype=np.float32).reshape(
        h // factor, factor, w // factor, factor, -1
    )
    return (blocks.mean(axis=(1, 3)) + 0.5).astype(np.uint8)


def lzw_encode(indices: np.ndarray) -> bytes:
    """GIF image data for palette indices: LZW min code size byte + data sub-blocks."""
    pixels = np.asarray(indices, dtype=np.uint16).reshape(-1)
    n = len(pixels)
    n_chunks = -(-n // _LITERALS_PER_CLEAR)
    # Each chunk: CLEAR followed by up to _LITERALS_PER_CLEAR literals.
    literals = np.full(n_chunks * _LITERALS_PER_CLEAR, -1, dtype=np.int32)
    literals[:n] = pixels
    codes = np.empty((n_chunks, _LITERALS_PER_CLEAR + 1), dtype=np.int32)
    codes[:, 0] = _CLEAR
    codes[:, 1:] = literals.reshape(n_chunks, _LITERALS_PER_CLEAR)
    codes = np.append(codes[codes >= 0], _EOI).astype(np.uint16)
    # Fixed-width codes, least significant bit first, as GIF requires.
    bits = ((codes[:, None] >> np.arange(_CODE_WIDTH, dtype=np.uint16)) & 1).astype(np.uint8)
    data = np.packbits(bits.reshape(-1), bitorder="little")
    # Sub-blocks: a length byte (1..255) then that many bytes; a 0 byte ends them.
    n_full, rest = divmod(len(data), 255)
    full = np.empty((n_full, 256), dtype=np.uint8)
    full[:, 0] = 255
    full[:, 1:] = data[: n_full * 255].reshape(n_full, 255)
    out = [bytes([_MIN_CODE_SIZE]), full.tobytes()]
    if rest:
        out += [bytes([rest]), data[n_full * 255 :].tobytes()]
    out.append(b"\x00")
    return b"".join(out)


def encode_gif(
    frames: Iterable[np.ndarray], fps: float = 10.0, scale_down: int = 2, loop: int = 0
) -> bytes:
    """Encode RGB uint8 frames (H, W, 3) as an animated GIF89a.

    Args:
        frames: the frames, all of the same size.
        fps: frames per second (GIF stores delays in 1/100 s).
        scale_down: downscale factor (2 halves width and height; 1 keeps them).
        loop: how often to repeat; 0 = forever.
    """
    images = [quantize(downscale(np.asarray(f), scale_down)) for f in frames]
    if not images:
        raise ValueError("no frames to write")
    height, width = images[0].shape
    for k, image in enumerate(images):
        if image.shape != (height, width):
            raise ValueError(f"frame {k} has size {image.shape}, frame 0 has {(height, width)}")
    if width > 0xFFFF or height > 0xFFFF:
        raise ValueError(f"frames of {width}x{height} are too large for GIF (max 65535)")
    delay = max(1, int(round(100.0 / fps)))

    out = [b"GIF89a"]
    # Logical screen: global colour table of 2**(7+1) entries, 8-bit colour resolution.
    out.append(struct.pack("<HHBBB", width, height, 0xF7, 0, 0))
    out.append(PALETTE.tobytes())
    # NETSCAPE2.0 application extension: loop count.
    out.append(b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", loop) + b"\x00")
    for image in images:
        # Graphic control extension: disposal 1 (keep), delay, no transparency.
        out.append(b"\x21\xf9\x04" + struct.pack("<BHB", 0x04, delay, 0) + b"\x00")
        # Image descriptor: full frame, no local colour table, not interlaced.
        out.append(b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0))
        out.append(lzw_encode(image))
    out.append(b"\x3b")
    return b"".join(out)


def write_gif(
    path: Union[str, os.PathLike],
    frames: Iterable[np.ndarray],
    fps: float = 10.0,
    scale_down: int = 2,
    loop: int = 0,
) -> int:
    """Write frames as an animated GIF to `path`; returns the number of bytes written."""
    data = encode_gif(frames, fps=fps, scale_down=scale_down, loop=loop)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)
