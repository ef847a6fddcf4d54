"""Pictures for the bench scripts: small PNGs of random pixels, each one different
(so no two are the same picture, and no camera looks frozen), written whole (to a
hidden temporary name, then renamed) as a camera uploader does."""
import os
import struct
import zlib


def png(size=64):
    raw = b"".join(b"\x00" + os.urandom(size * 3) for _ in range(size))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write(root, camera, name):
    """Write one new picture as <root>/<camera>/<name>."""
    d = os.path.join(root, camera)
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, "." + name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(png())
    os.rename(tmp, os.path.join(d, name))
