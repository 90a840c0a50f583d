"""Hand-written safetensors reader and writer (Debian ships no safetensors module).

Layout: 8-byte little-endian header length N, N bytes of JSON header padded
with spaces to a multiple of 8, then the raw little-endian tensor data, each
tensor at [begin, end) of data_offsets, counted from the start of the data.
"""
import json
import os
import struct

import numpy as np

DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
          "I16": "<i2", "I8": "i1", "U8": "u1"}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


def write(path, tensors, metadata=None):
    """tensors: {name: array} in file order; metadata: {str: str}."""
    header, blobs, offset = {}, [], 0
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("safetensors metadata keys and values must be strings")
        header["__metadata__"] = metadata
    for name, a in tensors.items():
        a = np.asarray(a)
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        blob = a.tobytes()
        header[name] = {"dtype": NAMES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:  # written aside and renamed: never a half file
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def read(path):
    """Returns ({name: numpy array}, metadata dict), checking the layout."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors header")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} past the end of the file")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = memoryview(data)[8 + n:]
    metadata = header.pop("__metadata__", {})
    tensors, end = {}, 0
    # Other writers may list tensors in any order; the data must still tile the body.
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        dtype = np.dtype(DTYPES[info["dtype"]])
        begin, stop = info["data_offsets"]
        count = int(np.prod(info["shape"], dtype=np.int64))
        if begin != end or stop - begin != count * dtype.itemsize or stop > len(body):
            raise ValueError(f"{path}: {name} has bad data_offsets {begin}, {stop}")
        tensors[name] = np.frombuffer(body[begin:stop], dtype=dtype).reshape(info["shape"]).copy()
        end = stop
    if end != len(body):
        raise ValueError(f"{path}: {len(body) - end} bytes after the last tensor")
    return {name: tensors[name] for name in header}, metadata
