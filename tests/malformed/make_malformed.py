#!/usr/bin/env python3
"""Writes the malformed inputs of tests/malformed/ (python3 standard library only).

Each file must make px::load_png fail with a clear message; EXPECTED.txt lists the substring each
message must contain, and tests/unit/malformed_tests.cpp checks them. The outputs are committed;
re-run this script after changing it (it is deterministic):  python3 tests/malformed/make_malformed.py
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def ihdr(width: int, height: int, depth: int, colour: int, interlace: int = 0) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace))


def png(width, height, depth, colour, rows, extra=b""):
    """A complete PNG whose scanlines (filter type 0) hold the bytes of `rows`."""
    raw = b"".join(b"\x00" + row for row in rows)
    return (SIGNATURE + ihdr(width, height, depth, colour) + extra +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def pattern(width: int, height: int, bytes_per_pixel: int):
    """Deterministic pixel bytes that do not compress to nothing."""
    return [bytes((7 * x + 13 * y + 31 * (x * y)) & 255 for x in range(width * bytes_per_pixel))
            for y in range(height)]


def header_only(width: int, height: int, depth: int = 8, colour: int = 6) -> bytes:
    """Signature, IHDR, a tiny IDAT and IEND: everything a header check needs, nothing decodable."""
    return (SIGNATURE + ihdr(width, height, depth, colour) +
            chunk(b"IDAT", zlib.compress(b"\x00" * 8)) + chunk(b"IEND", b""))


def main() -> None:
    good = png(8, 8, 8, 6, pattern(8, 8, 4))
    idat = good.index(b"IDAT")  # the type field; data starts 4 bytes later
    files = {
        # Cut inside the IHDR chunk: no complete header to read.
        "truncated_header.png": good[:20],
        # Cut in the middle of the IDAT data.
        "truncated_data.png": good[:idat + 4 + 10],
        # IDAT whose zlib header is broken (CMF 0x78 -> 0x79; the chunk CRC no longer matches).
        "bad_zlib.png": good[:idat + 4] + bytes([good[idat + 4] ^ 1]) + good[idat + 5:],
        # The same broken zlib header under a recomputed, matching CRC: the decoder must notice.
        "bad_zlib_good_crc.png": good[:idat - 4] + chunk(
            b"IDAT", bytes([good[idat + 4] ^ 1]) + good[idat + 5:good.index(b"IEND") - 8])
        + good[good.index(b"IEND") - 4:],
        # One flipped pixel byte deep inside the compressed data: only the CRC reveals it.
        "flipped_data_byte.png": good[:idat + 12] + bytes([good[idat + 12] ^ 0x40]) + good[idat + 13:],
        # A text file and an empty file.
        "not_png.txt": b"tensor 1 u8 at (0, 1) shape 1x4\nhalt\n",
        "empty.png": b"",
        # Headers the protocol refuses before decoding anything.
        "zero_size.png": header_only(0, 0),
        "huge.png": header_only(100000, 100000),
        "too_many_pixels.png": header_only(32768, 8193),
        # Formats pxVM never converts.
        "rgb8.png": png(4, 3, 8, 2, pattern(4, 3, 3)),
        "grey8.png": png(4, 3, 8, 0, pattern(4, 3, 1)),
        "grey_alpha8.png": png(4, 3, 8, 4, pattern(4, 3, 2)),
        "palette8.png": png(4, 3, 8, 3, [bytes([0, 1, 2, 3])] * 3,
                            chunk(b"PLTE", bytes(range(12)))),
        "rgba16.png": png(4, 3, 16, 6, pattern(4, 3, 8)),
        # A chunk before IHDR.
        "ihdr_not_first.png": SIGNATURE + chunk(b"tEXt", b"Comment\x00x") + good[8:],
    }
    for name, data in files.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    missing = os.path.join(HERE, "does_not_exist.png")
    if os.path.exists(missing):
        os.remove(missing)


if __name__ == "__main__":
    main()
