"""The IDX file format of MNIST and Fashion-MNIST."""

import gzip
import zlib

import numpy as np

__all__ = ["read_idx"]

# IDX type code -> big-endian numpy dtype of the stored values.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_idx_bytes(path):
    """The decompressed content of an IDX file, gzip detected by its magic bytes."""
    with open(path, "rb") as raw_file:
        content = raw_file.read()
    if not content.startswith(_GZIP_MAGIC):
        return content
    try:
        return gzip.decompress(content)
    except (EOFError, OSError, zlib.error) as error:
        raise ValueError(
            f"{path}: corrupt or truncated gzip data ({error})."
        ) from error


def read_idx(path):
    """Read an IDX file, the format of MNIST and Fashion-MNIST, into an array.

    Parameters
    ----------
    path : str or path-like
        IDX file, raw or gzip-compressed (detected by the gzip magic bytes
        ``1f 8b``, not by the file name).

    Returns
    -------
    array : ndarray
        The stored values with the stored shape, in native byte order: uint8
        (type code 0x08), int8 (0x09), int16 (0x0B), int32 (0x0C), float32 (0x0D)
        or float64 (0x0E).

    Raises
    ------
    ValueError
        If the file (named in the message) has a bad magic number, an unknown type
        code, a truncated header or data, trailing bytes, or corrupt gzip data.
    FileNotFoundError
        If ``path`` does not exist.

    See Also
    --------
    load_fashion_mnist : Fashion-MNIST from its four IDX files.

    Notes
    -----
    An IDX file starts with a 4-byte magic number: two zero bytes, a type code and
    the number of dimensions ``ndim``; then ``ndim`` big-endian unsigned 32-bit
    sizes, then the values in C order, big-endian.

    References
    ----------
    .. [1] Y. LeCun, C. Cortes and C. J. C. Burges, "The MNIST database of
       handwritten digits", section "File formats for the MNIST database".

    Examples
    --------
    >>> import gzip, os, tempfile
    >>> from sklearn_lt.datasets import read_idx
    >>> magic = bytes([0, 0, 0x08, 2])  # zero, zero, uint8 type code, 2 dimensions
    >>> header = magic + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     path = os.path.join(directory, "tiny-idx2-ubyte.gz")
    ...     with gzip.open(path, "wb") as idx_file:
    ...         _ = idx_file.write(header + bytes(range(6)))
    ...     array = read_idx(path)
    >>> array
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    content = _read_idx_bytes(path)
    if len(content) < 4:
        raise ValueError(
            f"{path}: not an IDX file, it has {len(content)} bytes, fewer than the "
            "4-byte magic number."
        )
    zeros, type_code, ndim = content[:2], content[2], content[3]
    if zeros != b"\x00\x00" or type_code not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: not an IDX file, bad magic number 0x{content[:4].hex()} "
            "(expected two zero bytes, a type code among "
            f"{', '.join(f'0x{code:02X}' for code in _IDX_DTYPES)} and the number of "
            "dimensions)."
        )
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise ValueError(
            f"{path}: truncated IDX header, {ndim} dimensions need {header_size} "
            f"bytes but the file has {len(content)}."
        )
    shape = tuple(
        int.from_bytes(content[4 + 4 * axis : 8 + 4 * axis], "big")
        for axis in range(ndim)
    )
    dtype = _IDX_DTYPES[type_code]
    expected_size = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(content) != expected_size:
        problem = "truncated" if len(content) < expected_size else "too long"
        raise ValueError(
            f"{path}: {problem} IDX data, shape {shape} of {dtype.itemsize}-byte "
            f"values needs {expected_size} bytes but the file has {len(content)}."
        )
    values = np.frombuffer(content, dtype=dtype, offset=header_size)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(shape)
